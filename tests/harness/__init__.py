"""Pytest fixtures that start real servers (Prometheus, Alertmanager, MLflow) and the
Kubernetes API stand-in. Every module here is loaded as a pytest plugin by conftest."""
