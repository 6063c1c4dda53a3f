"""How ``serve`` runs: the event loop it picks, and the heap frozen once the view is complete."""

from __future__ import annotations

import asyncio
import gc

import pytest
import uvloop

from webhook.cli import freeze_when_synced, run_loop
from webhook.state.store import ClusterState


@pytest.mark.parametrize(("choice", "expected"), [("auto", uvloop.run), ("uvloop", uvloop.run),
                                                  ("asyncio", asyncio.run)])
def test_the_event_loop_is_uvloop_unless_asked_otherwise(choice: str, expected: object) -> None:
    """uvloop when installed (it is a dependency on Linux), asyncio's own on request."""
    assert run_loop(choice) is expected


async def test_the_heap_is_frozen_once_the_online_view_has_synced() -> None:
    """Nothing is frozen while the view is syncing; everything alive is, right after."""
    state = ClusterState(expected_kinds=["Gateway"])
    gc.unfreeze()
    try:
        task = asyncio.create_task(freeze_when_synced(state, poll=0.01))
        await asyncio.sleep(0.05)
        assert gc.get_freeze_count() == 0 and not task.done()
        state.mark_synced("Gateway")
        await asyncio.wait_for(task, 2)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
