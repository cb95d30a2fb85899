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


def telegram_only(cluster: Any, fake: FakeTelegram) -> None:
    """The cluster's gateways run Telegram (on the fake) and no console."""
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


def test_one_gateway_polls_and_the_other_takes_over(
    make_cluster: Any, telegram_fake: LoopThread
) -> None:
    fake: FakeTelegram = telegram_fake.server
    cluster = make_cluster()
    telegram_only(cluster, fake)
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


def test_a_workers_yes_no_question_is_asked_with_the_gateways_buttons(
    make_cluster: Any, telegram_fake: LoopThread
) -> None:
    """The buttons live in the gateway (the chat connection); the command in a worker. The
    worker's question travels to the gateway, which asks with Telegram's inline keyboard and
    sends the press back; before, the question came as text to be answered by typing."""
    fake: FakeTelegram = telegram_fake.server
    cluster = make_cluster()
    telegram_only(cluster, fake)
    worker = cluster.worker()
    cluster.gateway_process()
    cluster.wait(lambda: cluster.owner_of("transport telegram"), what="poller")
    cluster.wait(lambda: cluster.owner_of("plugin probe") == worker.pid, what="probe owner")

    def say(text: str) -> None:
        asyncio.run_coroutine_threadsafe(
            fake.inject_message(text, user=ALICE), telegram_fake.loop
        ).result(5)

    def question() -> Any:
        calls = telegram_fake.read(lambda: [c for c in fake.sent if c.buttons])
        return calls[-1] if calls else None

    for press, expected in (("Yes", f"confirmed in {worker.pid}"), ("No", "not confirmed")):
        before = len(telegram_fake.read(lambda: [c for c in fake.sent if c.buttons]))
        say("/probe_confirm")
        asked = cluster.wait(
            lambda b=before: (
                question()
                if len(telegram_fake.read(lambda: [c for c in fake.sent if c.buttons])) > b
                else None
            ),
            what="the question with buttons",
        )
        assert asked.text.startswith("Really do it?")
        assert [b["text"] for b in asked.buttons] == ["Yes", "No"]
        data = next(b["callback_data"] for b in asked.buttons if b["text"] == press)
        asyncio.run_coroutine_threadsafe(
            fake.inject_callback_query(asked, data, user=ALICE), telegram_fake.loop
        ).result(5)
        cluster.wait(
            lambda e=expected: e in [c.text for c in telegram_fake.read(lambda: fake.sent)],
            what=expected,
        )
    texts = telegram_fake.read(lambda: [c.text for c in fake.sent])
    assert not [t for t in texts if "(yes/no)" in t]  # never asked in text
