"""Fixtures for the Kubernetes API stand-in (tests/support/kube_standin.py).

``kube``       one stand-in on 127.0.0.1 (free port) and a kubeconfig for it
               (context "standin", namespace "ml", a distinctive bearer token);
``kube_pair``  two stand-ins ("prod-us", "prod-eu") behind two contexts of one
               kubeconfig, for multi-cluster fleets.

Both yield :class:`KubeHandle` objects; startup takes milliseconds, so they are
function-scoped and every test gets an empty cluster.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.kube_standin import DEFAULT_TOKEN, KubeStandin, kubeconfig


class KubeHandle:
    """A running stand-in plus what a client needs to reach it.

    Everything :class:`~tests.support.kube_standin.KubeStandin` offers is available
    on the handle too (``put``, ``get``, ``objects``, ``remove``, ``deny``,
    ``allow_all``, ``fail_next``, ``inject``, ``clear_faults``, ``requests``,
    ``request_count``, ``clear_log``, ``set_controller_mode``, ``controller``,
    ``finish_job``, ``url``, ``token``, ``user``).
    """

    def __init__(self, standin: KubeStandin, kubeconfig_path: Path, context: str) -> None:
        self.standin = standin
        self.kubeconfig = kubeconfig_path
        """Path of the kubeconfig file (str() it for config/env)."""
        self.context = context
        """This stand-in's context name in the kubeconfig."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self.standin, name)

    def api_client(self, retries: Any = None) -> Any:
        """A real ``kubernetes.client.ApiClient`` for this context (tests' own calls).

        ``retries``: the client's urllib3 retries (None: the client's default, which
        retries 3 times and sleeps on Retry-After; False: none)."""
        from kubernetes import client
        from kubernetes import config as kube_config

        configuration = client.Configuration()
        configuration.retries = retries
        return kube_config.new_client_from_config(
            config_file=str(self.kubeconfig),
            context=self.context,
            persist_config=False,
            client_configuration=configuration,
        )


def _write_kubeconfig(path: Path, clusters: dict[str, str]) -> Path:
    # JSON is valid YAML, and the kubernetes client reads kubeconfigs as YAML.
    path.write_text(json.dumps(kubeconfig(clusters, token=DEFAULT_TOKEN), indent=2))
    return path


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeHandle]:
    """One Kubernetes API stand-in and a kubeconfig (context "standin") pointing at it."""
    standin = KubeStandin(name="standin").start()
    try:
        path = _write_kubeconfig(tmp_path / "kubeconfig", {"standin": standin.url})
        yield KubeHandle(standin, path, "standin")
    finally:
        standin.stop()


@pytest.fixture
def kube_pair(tmp_path: Path) -> Iterator[tuple[KubeHandle, KubeHandle]]:
    """Two stand-ins, contexts "prod-us" (current) and "prod-eu", in one kubeconfig."""
    us = KubeStandin(name="prod-us").start()
    eu = KubeStandin(name="prod-eu").start()
    try:
        path = _write_kubeconfig(tmp_path / "kubeconfig", {"prod-us": us.url, "prod-eu": eu.url})
        yield KubeHandle(us, path, "prod-us"), KubeHandle(eu, path, "prod-eu")
    finally:
        us.stop()
        eu.stop()
