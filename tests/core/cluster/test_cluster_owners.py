"""Outside connections change owner with their owner's death: real services, real processes.

The Rooms API purges a customer not pinged for a while; the presence a chat user holds is
pinged by the owner of the rooms plugin. Its simulator runs here (in a thread, with its own
event loop) so the test can read the pings it received.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bot_plugins.rooms.simulator import RoomsSimulator

PERFORMER = 4242


@pytest.fixture
def rooms_sim() -> Iterator[RoomsSimulator]:
    loop = asyncio.new_event_loop()
    sim = RoomsSimulator(key="k3y-rooms", purge_after=3.0, purge_check=0.2)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(sim.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)
    sim.test_loop = loop  # type: ignore[attr-defined]
    yield sim
    asyncio.run_coroutine_threadsafe(sim.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def members(sim: RoomsSimulator) -> list[Any]:
    """The room's members, read on the simulator's own loop."""

    async def read() -> list[Any]:
        return list(sim.members(PERFORMER))

    return asyncio.run_coroutine_threadsafe(read(), sim.test_loop).result(5)  # type: ignore[attr-defined]


def joins(sim: RoomsSimulator) -> int:
    async def read() -> int:
        return len(sim.calls_of("joinRoom"))

    return asyncio.run_coroutine_threadsafe(read(), sim.test_loop).result(5)  # type: ignore[attr-defined]


def test_a_presence_keeps_being_pinged_when_its_owner_is_killed(
    make_cluster: Any, rooms_sim: RoomsSimulator
) -> None:
    cluster = make_cluster(
        {
            "rooms": {
                "url": rooms_sim.url,
                "key": "k3y-rooms",
                "ip_address": "203.0.113.5",
                "ping_interval": 1.0,
            }
        }
    )
    first = cluster.worker()
    cluster.wait(lambda: cluster.owner_of("plugin rooms") == first.pid, what="rooms owner")
    second = cluster.worker()
    cluster.wait(lambda: len(cluster.members()) == 2, what="two workers")
    out = cluster.gateway([f"!room join {PERFORMER}"])
    assert out[0].startswith(f"You are in performer {PERFORMER}'s room as ")
    cluster.wait(lambda: members(rooms_sim) and members(rooms_sim)[0].pings >= 2, what="pings")
    cluster.kill(first)
    killed_at = time.monotonic()
    pings = members(rooms_sim)[0].pings
    cluster.wait(lambda: cluster.owner_of("plugin rooms") == second.pid, what="new owner")
    cluster.wait(
        lambda: members(rooms_sim) and members(rooms_sim)[0].pings >= pings + 3,
        what="pings from the new owner",
    )
    # never purged (3 s without a ping would have), and the same presence: no second join
    assert len(members(rooms_sim)) == 1
    assert joins(rooms_sim) == 1
    assert time.monotonic() - killed_at < 10
    out = cluster.gateway(["!rooms"])
    assert str(PERFORMER) in "\n".join(out)
