"""The server-side apply story of tests/ssa_transcript.py, told by a real kube-apiserver: the fake's
answers (tests/test_kubeapi.py) are checked against the same transcript."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from e2e_support import Cluster, api_client_fixture  # noqa: F401 - provides the api_client fixture
from ssa_transcript import EXPECTED, transcript

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


async def test_a_real_apiserver_tells_the_server_side_apply_story_as_recorded(api_client: Any) -> None:
    """Conflicts, preconditions, no-op applies, shared ownership, dry runs, removal and force, as recorded."""
    cluster = Cluster(api_client)
    run = uuid.uuid4().hex[:8]
    namespace = f"rw-e2e-{run}-ssa"
    await cluster.namespace(namespace, run)
    try:
        assert await asyncio.to_thread(transcript, api_client, namespace) == EXPECTED
    finally:
        await cluster.delete_namespace(namespace)
