"""A ChatWars payout whose owner is killed while ChatWars has the money but the bot has not
heard back: the command runs again at the next owner, which finds the ledger row the first run
wrote (its id comes from the command's id) and sends nothing; the late reply settles it.

The simulated game runs here, in a thread with its own loop, on the session's broker.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import LoopThread

from bot.store import Store
from bot_migrations.core import migrations as core_migrations
from bot_plugins.chatwars.simulator import ChatWarsSimulator

PLAYER = 6210


class ThreadedGame(LoopThread):
    def __init__(self, url: str) -> None:
        app = f"c{uuid.uuid4().hex[:10]}"
        super().__init__(ChatWarsSimulator(url, app, seed=7, feed_interval=0, delete_on_stop=True))
        self.sim = self.server

    def call(self, fn: Any, *args: Any) -> Any:
        return self.read(fn, *args)

    def payouts(self) -> int:
        return int(self.read(lambda: len(self.sim.world.payouts)))

    def token_for(self, user_id: int) -> tuple[str, str]:
        def grant() -> tuple[str, str]:
            world = self.sim.world
            return world.token_for(user_id), world.users[user_id].game_id

        return self.read(grant)  # type: ignore[no-any-return]


@pytest.fixture
def game(rabbitmq_broker: Any) -> Iterator[ThreadedGame]:
    threaded = ThreadedGame(str(rabbitmq_broker.url))
    yield threaded
    threaded.close()


def ledger(cluster: Any) -> list[tuple[str, str]]:
    conn = sqlite3.connect(cluster.database, timeout=30)
    try:
        return conn.execute(
            "select transaction_id, status from ledger where service = 'chatwars'"
        ).fetchall()
    finally:
        conn.close()


def test_a_payout_redelivered_after_its_owner_is_killed_is_paid_once(
    make_cluster: Any, rabbitmq_broker: Any, game: ThreadedGame
) -> None:
    cluster = make_cluster(
        {"chatwars": {"amqp_url": str(rabbitmq_broker.url), "app": game.sim.app, "timeout": 30}}
    )
    # bob is linked as `cw code` leaves it, in the database every process shares
    token, game_id = game.token_for(PLAYER)
    store = Store(cluster.database)
    store.migrate([core_migrations])
    store.set_link(
        "console",
        "bob",
        "chatwars",
        str(PLAYER),
        token=token,
        data={"telegram_id": PLAYER, "game_id": game_id},
        proof="proven",
    )
    store.close()
    first = cluster.worker()
    cluster.wait(lambda: cluster.owner_of("plugin chatwars") == first.pid, what="owner")
    second = cluster.worker()
    cluster.wait(lambda: len(cluster.members()) == 2, what="two workers")

    stream = cluster.stream()
    stream.send("!cw payout bob 2")
    [question] = stream.wait_for(1)
    assert question.startswith("Send 2 gold pouches (200 gold)")
    game.call(game.sim.hold_replies)  # the game pays, the bot hears nothing yet
    stream.send("yes")
    cluster.wait(lambda: game.payouts() == 1, what="the game paid")
    cluster.kill(first)

    # The next owner runs the command again. The "yes" was still unacknowledged at the dead
    # owner too, so it comes back as the answer (the question itself is not shown twice: the
    # gateway shows each reply number once); then the run finds the first run's row.
    cluster.wait(lambda: len(stream.lines) >= 2, timeout=40, what="the second run's word")
    refusal = stream.lines[1]
    assert "already started payout" in refusal
    assert "nothing was sent again" in refusal
    cluster.wait(lambda: cluster.owner_of("plugin chatwars") == second.pid, what="new owner")

    game.call(game.sim.release_replies)  # the late reply reaches the new owner
    cluster.wait(lambda: [s for _, s in ledger(cluster)] == ["done"], what="settled")
    assert game.payouts() == 1
    assert stream.close() == 0
