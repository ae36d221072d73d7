"""mltui's benchmarks: plain scripts run by ``python benchmarks/run.py`` (see README.md)."""
