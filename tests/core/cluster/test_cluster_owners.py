"""Outside connections change owner with their owner's death: real services, real processes.

The Rooms API purges a customer not pinged for a while; the presence a chat user holds is
pinged by the owner of the rooms plugin. Its simulator runs here (in a thread, with its own
event loop) so the test can read the pings it received.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import LoopThread

from bot_plugins.games.simulator import GamesSimulator
from bot_plugins.games.testing import games_section
from bot_plugins.rooms.simulator import RoomsSimulator

PERFORMER = 4242


@pytest.fixture
def rooms_sim() -> Iterator[LoopThread]:
    thread = LoopThread(RoomsSimulator(key="k3y-rooms", purge_after=3.0, purge_check=0.2))
    yield thread
    thread.close()


def members(sim: LoopThread) -> list[Any]:
    """The room's members, read on the simulator's own loop."""
    return sim.read(lambda: list(sim.server.members(PERFORMER)))  # type: ignore[no-any-return]


def joins(sim: LoopThread) -> int:
    return sim.read(lambda: len(sim.server.calls_of("joinRoom")))  # type: ignore[no-any-return]


def test_a_presence_keeps_being_pinged_when_its_owner_is_killed(
    make_cluster: Any, rooms_sim: LoopThread
) -> None:
    cluster = make_cluster(
        {
            "rooms": {
                "url": rooms_sim.server.url,
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


@pytest.fixture
def games_sim() -> Iterator[LoopThread]:
    thread = LoopThread(GamesSimulator())
    yield thread
    thread.close()


def test_a_followed_game_keeps_sending_alerts_when_its_owner_is_killed(
    make_cluster: Any, games_sim: LoopThread
) -> None:
    sim: GamesSimulator = games_sim.server
    game_id = games_sim.read(sim.add_demo_game)
    pools = [games_sim.read(lambda n=n: sim.add_pool(game_id, f"pool {n}")) for n in range(2)]
    cluster = make_cluster({"games": games_section(sim)})
    first = cluster.worker()
    cluster.wait(lambda: cluster.owner_of("plugin games") == first.pid, what="games owner")
    second = cluster.worker()
    cluster.wait(lambda: len(cluster.members()) == 2, what="two workers")
    stream = cluster.stream()
    stream.send(f"!game join {game_id}")
    [joined] = stream.wait_for(1)
    assert joined.startswith("Joined Argentina - Brazil (")

    def resolve(pool: str) -> None:
        asyncio.run_coroutine_threadsafe(sim.resolve_pool(game_id, pool), games_sim.loop).result(5)

    resolve(pools[0])
    cluster.wait(lambda: len(stream.lines) >= 2, what="the first alert")
    assert "pool 0" in stream.lines[1]
    cluster.kill(first)
    cluster.wait(lambda: cluster.owner_of("plugin games") == second.pid, what="new owner")
    # the new owner joined the game again from the chat's subscription in the store
    cluster.wait(
        lambda: games_sim.read(lambda: sim.subscriber_count(game_id)) >= 1, what="joined again"
    )
    resolve(pools[1])
    cluster.wait(lambda: any("pool 1" in x for x in stream.lines[2:]), what="alerts again")
    assert stream.close() == 0
    assert sum("pool 0" in x for x in stream.lines) == 1  # nothing was said twice
