"""Discord sharded across gateway processes: each runs its range, and identifies take turns.

With ``max_concurrency`` 1 Discord allows one IDENTIFY per 5 s for the whole bot; two
processes each starting their first shard at once would both identify inside one window.
The fake Discord runs here, in a thread with its own loop, and records when each session
identified.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from conftest import LoopThread
from fake_discord import FakeDiscord, FakeGuild

WINDOW = 1.0


@pytest.fixture
def discord_fake() -> Iterator[LoopThread]:
    thread = LoopThread(FakeDiscord(guilds=[FakeGuild.sample()]))
    yield thread
    thread.close()


def discord_only(cluster: Any, fake: FakeDiscord, **discord: Any) -> None:
    """The cluster's gateways run Discord (on the fake) and no console."""
    settings = yaml.safe_load(cluster.config.read_text())
    settings["transports"] = {
        "console": {"enabled": False},
        "discord": {
            "enabled": True,
            "token": fake.token,
            "api_base": fake.api_base,
            "gateway_url": fake.gateway_url,
            "sync_commands": False,
            **discord,
        },
    }
    cluster.config.write_text(yaml.safe_dump(settings))


def sessions(fake: LoopThread) -> list[Any]:
    return fake.read(lambda: list(fake.server.sessions))  # type: ignore[no-any-return]


def test_gateways_split_the_shards_and_never_identify_in_one_window(
    make_cluster: Any, discord_fake: LoopThread
) -> None:
    cluster = make_cluster()
    discord_only(cluster, discord_fake.server, shard_count=4, shard_identify_delay=WINDOW)
    cluster.worker()
    first = cluster.gateway_process("--shards", "0-1")
    second = cluster.gateway_process("--shards", "2,3")
    got = cluster.wait(
        lambda: len(sessions(discord_fake)) == 4 and sessions(discord_fake),
        timeout=40,
        what="four shards identified",
    )
    assert sorted(s.shard_id for s in got) == [0, 1, 2, 3]
    assert {s.shard_count for s in got} == {4}
    times = sorted(s.identified_at for s in got)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= WINDOW * 0.9, gaps

    def discord_gateways() -> set[int]:
        return {
            m["pid"]
            for m in cluster.members()
            if m["role"] == "gateway" and "transport discord" in m["owns"]
        }

    cluster.wait(lambda: discord_gateways() == {first.pid, second.pid}, what="both gateways up")


def test_a_slash_commands_user_option_reaches_the_worker_as_that_user(
    make_cluster: Any, discord_fake: LoopThread
) -> None:
    """A member picked in Discord's list is an id. Sent to the worker as their display name,
    it became a bare name, and a plugin looking a name up (a payout's recipient) could find
    somebody else who answers to it."""
    fake: FakeDiscord = discord_fake.server
    guild = fake.guilds[0]
    general, alice, bob = guild.channel("general"), guild.member("alice"), guild.member("bob")
    cluster = make_cluster()
    discord_only(cluster, fake, sync_commands=True)
    cluster.worker()
    cluster.gateway_process()
    cluster.wait(
        lambda: discord_fake.read(
            lambda: (
                any(c["name"] == "probe" for c in fake.commands(None))
                or any(c["name"] == "probe" for c in fake.commands(guild.id))
            )
        ),
        what="slash commands synced",
    )
    call = discord_fake.call(
        fake.inject_command(
            "probe who",
            {"user": alice, "note": "it's  for the prize"},
            user=bob,
            channel_id=general.id,
        )
    )
    answer = discord_fake.call(fake.wait_for_callback(call, timeout=30))
    assert answer.content == f"who discord {alice.id} alice note=it's  for the prize"
