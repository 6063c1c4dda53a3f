"""End-to-end fixtures: skipped unless KUBECONFIG points at a reachable cluster with the Gateway API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from e2e_support import cluster_client


@pytest.fixture(scope="module")
def api_client() -> Iterator[Any]:
    client = cluster_client()
    yield client
    client.close()
