"""Telegram polling has one owner among the gateways: a second poller on the same token gets
409 Conflict and the two would take turns failing. Both gateways here are configured for
Telegram; one polls, the other stands by and takes over when the first is killed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from conftest import LoopThread
from fake_telegram import FakeTelegram, TgUser

ALICE = TgUser(4242, "Alice", "alice")


@pytest.fixture
def telegram_fake() -> Iterator[LoopThread]:
    thread = LoopThread(FakeTelegram())
    yield thread
    thread.close()


def test_one_gateway_polls_and_the_other_takes_over(
    make_cluster: Any, telegram_fake: LoopThread
) -> None:
    fake: FakeTelegram = telegram_fake.server
    cluster = make_cluster()
    settings = yaml.safe_load(cluster.config.read_text())
    settings["transports"] = {
        "console": {"enabled": False},
        "telegram": {
            "enabled": True,
            "token": fake.token,
            "base_url": fake.base_url,
            "base_file_url": fake.base_file_url,
            "poll_timeout": 1,
            "reconnect_min": 0.05,
            "reconnect_max": 0.2,
        },
    }
    cluster.config.write_text(yaml.safe_dump(settings))
    cluster.worker()
    first = cluster.gateway_process()
    cluster.wait(lambda: cluster.owner_of("transport telegram") == first.pid, what="poller")
    second = cluster.gateway_process()
    cluster.wait(lambda: len(cluster.members()) == 3, what="the second gateway")

    def replies() -> list[str]:
        return telegram_fake.read(lambda: [c.text for c in fake.sent])  # type: ignore[no-any-return]

    def say(text: str) -> None:
        asyncio.run_coroutine_threadsafe(
            fake.inject_message(text, user=ALICE), telegram_fake.loop
        ).result(5)

    say("/probe_seq 1")
    cluster.wait(lambda: "seq 1" in replies(), what="the first answer")
    time.sleep(2.5)  # a few long polls: a second poller would end them with 409
    assert telegram_fake.read(lambda: fake.poll_conflicts) == 0
    assert cluster.owner_of("transport telegram") == first.pid

    cluster.kill(first)
    cluster.wait(lambda: cluster.owner_of("transport telegram") == second.pid, what="takeover")
    say("/probe_seq 2")
    cluster.wait(lambda: "seq 2" in replies(), what="an answer through the new poller")
    assert replies().count("seq 1") == 1
