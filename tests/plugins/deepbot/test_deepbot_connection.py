"""The DeepBot connection against servers written to misbehave, over real websockets.

Each server here is a few lines of ``websockets``: registration answers other than success,
frames that are huge, deeply nested or not replies at all, and (the fuzz test) thousands of
generated malformed frames between valid replies. Plus start-up against a server that takes
a second to accept, both in-process and through ``bot run`` as a subprocess.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from bot_plugins.deepbot.client import ConnectionState, DeepBotClient
from bot_plugins.deepbot.errors import DeepBotError, DeepBotNotConnected
from bot_plugins.deepbot.simulator import DeepBotSimulator

Handler = Callable[[ServerConnection], Awaitable[None]]

#: Fast client timings (as in conftest.py, which tests cannot import).
FAST: dict[str, object] = {
    "timeout": 1.0,
    "late_reply_grace": 0.3,
    "reconnect_base": 0.02,
    "reconnect_cap": 0.1,
    "ping_interval": None,
}


@asynccontextmanager
async def hostile(handler: Handler) -> AsyncIterator[str]:
    """A websocket server on a free port running ``handler`` per connection; yields its URL."""
    async with serve(
        handler, "127.0.0.1", 0, compression=None, ping_interval=None, max_size=None
    ) as server:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"


def reply(function: str, param: str, msg: object) -> str:
    return json.dumps({"function": function, "param": param, "msg": msg})


async def eventually(condition: Callable[[], bool], within: float = 5.0) -> None:
    for _ in range(int(within / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached in time")


# --- registration ----------------------------------------------------------------------------


async def test_registration_answers_other_than_a_bad_secret_are_retried_and_shown() -> None:
    # Issue 14 item 6: each of these disabled the plugin until a restart.
    answers = [None, {}, "not authorized", "Server busy", "Server busy"]
    attempts: list[object] = []

    async def handler(ws: ServerConnection) -> None:
        async for frame in ws:
            if frame.startswith("api|register|"):
                answer = answers[len(attempts)] if len(attempts) < len(answers) else "success"
                attempts.append(answer)
                await ws.send(reply("register", "register", answer))
                if answer != "success":
                    return
            elif frame == "api|get_points|bob":
                await ws.send(reply("get_points", "bob", "5.00"))

    async with hostile(handler) as url:
        client = DeepBotClient(url, "s3cret", **{**FAST, "reconnect_base": 0.05})
        try:
            await client.start()
            await eventually(lambda: len(attempts) >= 4)
            assert client.state is not ConnectionState.AUTH_FAILED
            assert client.last_error is not None
            assert client.last_error.startswith("DeepBot did not accept the registration")
            await client.wait_connected(5.0)
            assert attempts == [*answers, "success"]
            assert await client.get_points("bob") == Decimal(5)
        finally:
            await client.close()


async def test_a_busy_registration_is_in_status_while_retrying(
    bot_harness: object,
) -> None:
    async def handler(ws: ServerConnection) -> None:
        async for frame in ws:
            if frame.startswith("api|register|"):
                await ws.send(reply("register", "register", "Server busy"))
                return

    async with hostile(handler) as url:
        section = {
            "url": url,
            "secret": "s3cret",
            "timeout": 0.5,
            "reconnect_min_delay": 0.05,
            "reconnect_max_delay": 0.1,
        }
        async with bot_harness(plugins={"deepbot": section}) as bot:  # type: ignore[operator]
            client = bot.client("deepbot")
            await eventually(lambda: client.last_error is not None)
            (status,) = await bot.chat().say("!status")
            line = next(li for li in status.splitlines() if "deepbot" in li.lower())
            assert "Server busy" in line and "Retrying" in line, status


# --- frames ----------------------------------------------------------------------------------


async def test_nested_and_huge_frames_are_logged_once_and_survived(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Issue 14 item 7: one nested frame raised RecursionError and dropped the connection.
    connections: list[ServerConnection] = []

    async def handler(ws: ServerConnection) -> None:
        connections.append(ws)
        async for frame in ws:
            if frame.startswith("api|register|"):
                await ws.send(reply("register", "register", "success"))
                continue
            user = frame.split("|")[2]
            if user == "deep":
                await ws.send('{"function": "get_points", "msg": ' + "[" * 200_000)
            elif user == "huge":
                await ws.send('{"x": "' + "a" * (2 << 20) + '"}')
                continue
            await ws.send(reply("get_points", user, "7.00"))

    caplog.set_level(logging.WARNING, logger="bot_plugins.deepbot")
    async with hostile(handler) as url:
        async with DeepBotClient(url, "s3cret", **FAST) as client:
            assert await client.get_points("deep") == Decimal(7)
            assert client.bad_frames == 1 and len(connections) == 1
            with pytest.raises(DeepBotNotConnected):  # the huge frame closes the connection
                await client.get_points("huge")
            await client.wait_connected(5.0)
            assert await client.get_points("bob") == Decimal(7)
            assert client.bad_frames == 2 and len(connections) == 2
    bad = [r for r in caplog.records if "malformed frame" in r.getMessage()]
    assert len(bad) == 2
    ours = [r for r in caplog.records if r.name.startswith("bot_plugins.deepbot")]
    assert all(r.exc_info is None for r in ours)


# --- start-up --------------------------------------------------------------------------------


async def test_a_call_during_the_first_connection_attempt_waits_for_it(
    deepbot_sim: DeepBotSimulator, deepbot_secret: str
) -> None:
    deepbot_sim.accept_delay = 1.0
    client = DeepBotClient(deepbot_sim.url, deepbot_secret, **{**FAST, "timeout": 4.0})
    try:
        await client.start()
        assert client.state is ConnectionState.CONNECTING
        assert await client.get_points("alice") == Decimal(500)
    finally:
        await client.close()


async def test_a_call_while_waiting_to_retry_still_fails_at_once(deepbot_secret: str) -> None:
    client = DeepBotClient("ws://127.0.0.1:9", deepbot_secret, **{**FAST, "reconnect_base": 5})
    try:
        await client.start()
        await eventually(lambda: client.state is ConnectionState.DISCONNECTED)
        with pytest.raises(DeepBotNotConnected):
            async with asyncio.timeout(0.5):
                await client.get_points("alice")
    finally:
        await client.close()


async def test_bot_run_answers_a_piped_command_against_a_slow_to_accept_deepbot(
    deepbot_sim: DeepBotSimulator, deepbot_secret: str, tmp_path: Path
) -> None:
    # Issue 13: `printf '!points x\n' | bot run` against a real server said "not connected".
    deepbot_sim.accept_delay = 1.0
    config = tmp_path / "real.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            bot:
              database: {tmp_path / "bot.db"}
            transports:
              console: {{enabled: true}}
            plugins:
              deepbot:
                url: {deepbot_sim.url}
                secret: {deepbot_secret}
              chatwars: {{enabled: false}}
              concertpos: {{enabled: false}}
              games: {{enabled: false}}
              rooms: {{enabled: false}}
            """
        )
    )
    env = {k: v for k, v in os.environ.items() if k != "BOT_SECRET_KEY"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "run",
        "--config",
        str(config),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=tmp_path,
        env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(b"!points alice\n"), 60)
    assert process.returncode == 0, err.decode()
    assert out.decode().splitlines()[-1] == "alice has 500.00 points", (out, err)


# --- fuzz ------------------------------------------------------------------------------------

USERS = 40
CALLS = 600
HUGE = 0.004


def junk(rng: random.Random, user: str) -> str | bytes:
    """One malformed or stray frame; never a reply to (get_points, ``user``) itself, which
    the protocol cannot tell from the real one."""
    kind = rng.randrange(12)
    other = f"x{rng.randrange(10**6)}"
    if kind == 0:
        return "".join(chr(rng.randrange(32, 0x2FFF)) for _ in range(rng.randrange(1, 80)))
    if kind == 1:
        return reply("get_points", user, "7.00")[: rng.randrange(1, 40)]  # truncated JSON
    if kind == 2:
        return "{" * rng.randrange(9, 300_000)
    if kind == 3:
        depth = rng.randrange(9, 5000)
        return '{"function": "get_points", "param": "' + user + '", "msg": ' + "[" * depth
    if kind == 4:
        return json.dumps(rng.choice([[], 3, "text", None, [1, {"a": 2}], 1e308]))
    if kind == 5:
        wrong = rng.choice([{"function": 5}, {"function": None, "param": user}, {"param": user}])
        return json.dumps(wrong)
    if kind == 6:
        return reply("get_points", other, "1.00")  # a stray reply for nobody waiting
    if kind == 7:
        return reply(rng.choice(["music", "newsub", "get_hours"]), other, {"x": [1, 2]})
    if kind == 8:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
    if kind == 9:
        return f"music|{other}|{'y' * rng.randrange(100)}"
    if kind == 10:
        return json.dumps({"function": "get_points", "param": ["a"], "msg": "1"})
    return '{"function": "get_points", "param": "' + user + '", "msg": "\\ud800'  # bad escape


async def test_fuzz_thousands_of_malformed_frames_between_valid_replies(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rng = random.Random(1413)
    sent = {"junk": 0, "huge": 0, "wrong_answer": 0, "replies": 0}
    caplog.set_level(logging.WARNING, logger="bot_plugins.deepbot")

    async def handler(ws: ServerConnection) -> None:
        async for frame in ws:
            if not isinstance(frame, str):
                continue
            if frame.startswith("api|register|"):
                await ws.send(reply("register", "register", "success"))
                continue
            user = frame.split("|")[2]
            for _ in range(rng.randrange(2, 9)):
                await ws.send(junk(rng, user))
                sent["junk"] += 1
            roll = rng.random()
            if roll < HUGE:
                sent["huge"] += 1
                await ws.send("{" + " " * (1 << 20) + "}")  # over max_size: a reconnect
                return
            if roll < 0.02:
                sent["wrong_answer"] += 1  # the answer itself has the wrong type
                await ws.send(reply("get_points", user, rng.choice([{"a": 1}, [], None, "z"])))
                continue
            sent["replies"] += 1
            await ws.send(reply("get_points", user, f"{int(user[1:])}.00"))

    async with hostile(handler) as url:
        client = DeepBotClient(url, "s3cret", **{**FAST, "timeout": 2.0})
        await client.connect()
        outcomes = {"right": 0, "error": 0}
        kinds: dict[str, int] = {}

        async def one(i: int) -> None:
            user = f"u{i % USERS}"
            try:
                await client.wait_connected(5.0)
                async with asyncio.timeout(15):  # no call may hang
                    value = await client.get_points(user)
            except DeepBotError as exc:
                outcomes["error"] += 1
                kinds[type(exc).__name__] = kinds.get(type(exc).__name__, 0) + 1
                return
            assert value == Decimal(i % USERS), (user, value)  # never another user's answer
            outcomes["right"] += 1

        try:
            for start in range(0, CALLS, 20):
                await asyncio.gather(*(one(i) for i in range(start, start + 20)))
            await client.wait_connected(5.0)
            assert await client.get_points("u3") == Decimal(3)  # the connection recovered
            assert client.state is ConnectionState.CONNECTED
        finally:
            await client.close()
    print(f"fuzz: {sent}, outcomes {outcomes} {kinds}, bad frames {client.bad_frames}")
    assert outcomes["right"] + outcomes["error"] == CALLS  # every call answered
    assert sent["junk"] >= 2000
    assert outcomes["right"] >= sent["replies"] - 20 * (sent["huge"] + 1)
    ours = [r for r in caplog.records if r.name.startswith("bot_plugins.deepbot")]
    assert all(r.exc_info is None for r in ours)  # one line per bad frame, no traceback
    assert client.bad_frames >= sent["junk"] // 3


async def test_fuzz_through_chat_commands_every_command_gets_a_clear_answer(
    bot_harness: Any,
) -> None:
    rng = random.Random(1415)
    sent = {"junk": 0, "replies": 0}

    async def handler(ws: ServerConnection) -> None:
        async for frame in ws:
            if not isinstance(frame, str):
                continue
            if frame.startswith("api|register|"):
                await ws.send(reply("register", "register", "success"))
                continue
            user = frame.split("|")[2]
            for _ in range(rng.randrange(2, 9)):
                await ws.send(junk(rng, user))
                sent["junk"] += 1
            if rng.random() < 0.03:
                await ws.send(reply("get_points", user, rng.choice([{"a": 1}, [], None])))
                continue
            sent["replies"] += 1
            await ws.send(reply("get_points", user, f"{int(user[1:])}.00"))

    async with hostile(handler) as url:
        section = {"url": url, "secret": "s3cret", "timeout": 2.0, "reconnect_min_delay": 0.02}
        async with bot_harness(plugins={"deepbot": section}) as bot:
            await bot.client("deepbot").wait_connected(5.0)
            answers: list[str] = []
            for start in range(0, 300, 20):
                batch = [
                    bot.chat(f"c{i}").say(f"!points u{i % USERS}", user=f"p{i}")
                    for i in range(start, start + 20)
                ]
                results = await asyncio.gather(*batch)
                for i, replies in zip(range(start, start + 20), results, strict=True):
                    (text,) = replies
                    answers.append(text)
                    if not text.startswith("DeepBot gave an answer"):
                        assert text == f"u{i % USERS} has {i % USERS}.00 points", text
    print(f"chat fuzz: {sent}, {len(answers)} commands")
    assert len(answers) == 300 and sent["junk"] >= 1000
    assert not [a for a in answers if "something went wrong" in a]
