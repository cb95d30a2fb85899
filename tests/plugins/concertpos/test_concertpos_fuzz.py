"""Fuzz: a hostile gateway buries every valid reply among generated malformed frames.

The gateway here is a websocket server of the test suite: it asks the simulator for the
valid reply to each request (``ConcertPOSSimulator.respond``) and, before sending it, sends
a random run of bad JSON, oversized and deeply nested frames, wrong types, stray replies and
stray errors (huge ``retry_after`` included). Checked (issue 14's "done when"): nothing
crashes or logs a traceback, every command is answered (a result or a plain ConcertPOS
error, never a hang past its timeout), and once the noise stops the connection serves again.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from concertpos_support import CONCERTPOS_API_KEY, CONCERTPOS_INSTANCE
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from bot_plugins.concertpos.client import ConcertPOSClient
from bot_plugins.concertpos.errors import ConcertPOSError
from bot_plugins.concertpos.simulator import ConcertPOSSimulator

#: the client refuses frames above this (so the fuzz's oversized frames cost a reconnect)
MAX_FRAME = 256 * 1024
READS = ["getstatus", "version", "listtransactions", "getconfig", "getdeposit", "listpm"]


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def junk(rng: random.Random) -> tuple[str, str]:
    """One malformed frame and its kind."""
    kind = rng.choice(
        [
            "bad_json",
            "bad_json",
            "nested",
            "wrong_types",
            "wrong_types",
            "stray_event",
            "stray_error",
            "ratelimit",
            "huge",
            "binaryish",
        ]
    )
    if kind == "bad_json":
        frame = rng.choice(
            [
                "{",
                '{"type": "event", "result": {',
                "NaN",
                "undefined",
                '{"type":"event"}}',
                # JSON5 only: bad frames in JSON mode, stray messages in JSON5 mode
                "{type:'event', result:{event:'nosuchevent', parameters:{a:Infinity,},},}",
                "{type:'error', result:{error:'invalid_json5', code:0x10,},} // stray",
                "{type:'broadcast', result:{message:'hello', parameters:[NaN, -Infinity]}}",
                "".join(chr(rng.randint(32, 126)) for _ in range(rng.randint(1, 80))),
            ]
        )
    elif kind == "nested":
        depth = rng.choice([40, 1000, 30_000])
        frame = rng.choice(
            [
                _deep(depth),
                '{"type":"event","result":{"event":"getstatus","parameters":'
                + '{"a":' * depth
                + "1"
                + "}" * depth
                + "}}",
            ]
        )
    elif kind == "wrong_types":
        frame = json.dumps(
            rng.choice(
                [
                    {"type": 5, "result": {}},
                    {"type": "event", "result": []},
                    {"type": "event", "result": {"event": ["x"], "parameters": 3}},
                    {"type": "event", "result": {"event": None, "parameters": "s"}},
                    {"type": "error", "result": {"error": {"x": 1}, "code": "NaN"}},
                    {"type": "error", "result": {"error": 10**30, "code": [1, 2]}},
                    {"type": "broadcast", "result": {"message": {"a": 1}, "parameters": 1}},
                    {"type": "command", "command": {"x": []}, "result": None},
                    {"type": None},
                    [1, "two", None],
                    "just a string",
                    12345,
                ]
            )
        )
    elif kind == "stray_event":
        event = rng.choice(["nosuchevent", "payitem", "listpos", "getlicense", *READS])
        params = rng.choice([{}, {"Version": 5}, {"Products": "x"}, {"Transactions": [1]}, None])
        frame = json.dumps({"type": "event", "result": {"event": event, "parameters": params}})
    elif kind == "stray_error":
        error = rng.choice(["invalid_parameter", "invalid_json", "mystery", "x" * 500, ""])
        frame = json.dumps({"type": "error", "result": {"error": error, "code": 0}})
    elif kind == "ratelimit":
        retry = rng.choice([86_400_000, 1e308, "1e999", -5, "soon", None, 10**400])
        command = rng.choice([*READS, "nosuchcommand", None])
        code = {"command": command, "retry_after": retry}
        frame = json.dumps({"type": "error", "result": {"error": "ratelimit", "code": code}})
    elif kind == "huge":
        size = rng.choice([50_000, MAX_FRAME + 1024]) if rng.random() < 0.05 else 50_000
        frame = json.dumps({"type": "broadcast", "result": {"message": "x" * size}})
    else:
        frame = "\ufffd\x00\x01" + "\x7f" * rng.randint(1, 20)
    return kind, frame


@asynccontextmanager
async def hostile_gateway(
    sim: ConcertPOSSimulator, rng: random.Random, noise: Callable[[], bool], content_type: str
) -> AsyncIterator[tuple[str, Counter[str]]]:
    """A gateway answering through the simulator, with junk before each valid reply while
    ``noise()`` is true. Yields its URL and a count of junk frames sent by kind."""
    sent: Counter[str] = Counter()

    async def handler(ws: ServerConnection) -> None:
        try:
            async for raw in ws:
                _, reply = sim.respond(raw, CONCERTPOS_INSTANCE, json5_mode=content_type == "json5")
                while noise() and rng.random() < 0.95:
                    kind, frame = junk(rng)
                    await ws.send(frame)
                    sent[kind] += 1
                    if rng.random() < 0.3:
                        break
                if reply is not None:
                    await ws.send(json.dumps(reply))
        except ConnectionClosed:
            pass

    async with serve(handler, "127.0.0.1", 0, max_size=2**20) as server:
        port = server.sockets[0].getsockname()[1]
        query = f"?instance={CONCERTPOS_INSTANCE}&Content-Type={content_type}"
        yield f"ws://127.0.0.1:{port}/{query}", sent


@pytest.mark.parametrize("content_type", ["json", "json5"])
async def test_thousands_of_malformed_frames_between_valid_replies(
    caplog: pytest.LogCaptureFixture, content_type: str
) -> None:
    caplog.set_level(logging.WARNING, logger="bot_plugins.concertpos")
    rng = random.Random(1414)
    sim = ConcertPOSSimulator(
        instance=CONCERTPOS_INSTANCE, api_key=CONCERTPOS_API_KEY, rate_limit=10**6
    )
    noisy = True
    async with hostile_gateway(sim, rng, lambda: noisy, content_type) as (url, sent):
        client = ConcertPOSClient(
            [url],
            CONCERTPOS_API_KEY,
            timeout=1.0,
            connect_timeout=2.0,
            rate_limit=10**6,
            max_retry_after=0.05,
            reconnect_min=0.01,
            reconnect_max=0.05,
            late_reply_grace=0.5,
            max_frame=MAX_FRAME,
            fetch_license=False,
            status_ttl=0,
            version_ttl=0,
        )
        outcomes: Counter[str] = Counter()
        try:
            assert await client.start(wait=5)

            async def one(command: str) -> None:
                calls: dict[str, Callable[[], Any]] = {
                    "getstatus": lambda: client.get_status(refresh=True),
                    "version": lambda: client.version(refresh=True),
                    "listtransactions": lambda: client.list_transactions(limit=3),
                    "getconfig": client.get_config,
                    "getdeposit": lambda: client.get_deposit(refresh=True),
                    "listpm": lambda: client.list_payment_methods(refresh=True),
                }
                try:
                    async with asyncio.timeout(10):  # a hang is a failure, not an answer
                        await calls[command]()
                    outcomes["answered"] += 1
                except ConcertPOSError as exc:
                    outcomes[f"error:{exc.code}"] += 1

            rounds = 0
            while sum(sent.values()) < 3000:
                rounds += 1
                assert rounds < 2000, "the fuzz made no progress"
                batch = [rng.choice(READS) for _ in range(rng.randint(1, 3))]
                await asyncio.gather(*(one(c) for c in batch))
                if not client.connected:
                    await client.wait_connected(3)
            commands = sum(outcomes.values())
            noisy = False
            # once the noise stops, the connection serves again (after a resync if needed)
            for _ in range(50):
                try:
                    status = await client.get_status(refresh=True)
                    break
                except ConcertPOSError:
                    await asyncio.sleep(0.1)
            else:
                pytest.fail("the connection never recovered")
            assert status.ok
            assert (await client.list_transactions(limit=2)).count == 2
            connection = client._connection
            print(
                f"\nfuzz ({content_type}): {sum(sent.values())} malformed frames ({dict(sent)}); "
                f"{commands} commands: {dict(outcomes)}; "
                f"bad frames read {connection.bad_frames}, stray errors {connection.stray_errors}, "
                f"reconnects {client.state().reconnects}"
            )
        finally:
            await client.close()
    assert sum(sent.values()) >= 3000
    assert outcomes["answered"] > commands // 3
    tracebacks = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not tracebacks, tracebacks[0].getMessage()
