"""The plugin's hooks: start-up without a broker, health in ``status``, the embedded
``simulate: true`` path on a real broker, and a clean stop."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

import aio_pika

from bot_plugins.chatwars.config import BROKER_HINT
from bot_plugins.chatwars.simulator import ChatWarsSimulator


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def status_line(lines: list[str]) -> str:
    [text] = lines
    [line] = [x for x in text.splitlines() if x.startswith("plugin chatwars:")]
    return line


async def boss(chat: Any, text: str) -> list[str]:
    """An admin's command, answering yes to the confirmation a money command asks first (the
    question itself, which ends with "?", is left out of the replies)."""
    replies = await chat.say(text, user="boss", admin=True, confirm=True)
    return [r for r in replies if not r.endswith("?")]


async def test_without_a_broker_the_plugin_reports_down_and_the_bot_runs(
    bot_harness: Callable[..., Any], chatwars_app_password: str
) -> None:
    url = f"amqp://cwapp:{chatwars_app_password}@127.0.0.1:{closed_port()}/"
    started = time.monotonic()
    async with bot_harness(plugins={"chatwars": {"amqp_url": url, "app": "demo"}}) as bot:
        assert time.monotonic() - started < 3  # start-up did not wait for the broker
        chat = bot.chat(kind="private")
        line = status_line(await chat.say("!status"))
        assert line.startswith(
            "plugin chatwars: down - Not connected to ChatWars at amqp://127.0.0.1:"
        )
        assert "cannot reach the broker" in line and "Connection refused" in line
        assert line.endswith(f"To run it locally: {BROKER_HINT}.")
        assert chatwars_app_password not in line
        assert await chat.say("!ping") == ["pong"]
        [refused] = await chat.say("!cw link 123")
        assert refused.startswith("ChatWars is not reachable right now (cannot reach the broker")
        assert chatwars_app_password not in refused
        runtime = bot.plugin("chatwars")
    assert runtime.leaked == []


async def test_embedded_default_without_a_broker_reports_the_simulator_down(
    bot_harness: Callable[..., Any],
) -> None:
    url = f"amqp://guest:guest@127.0.0.1:{closed_port()}/"
    started = time.monotonic()
    async with bot_harness(plugins={"chatwars": {"simulate": True, "amqp_url": url}}) as bot:
        assert time.monotonic() - started < 2
        chat = bot.chat(kind="private")
        line = status_line(await chat.say("!status"))
        assert line.startswith("plugin chatwars: down - The ChatWars simulator cannot start: ")
        assert "cannot reach the broker" in line
        assert line.endswith(f"To fix: {BROKER_HINT}.")
        assert await chat.say("!ping") == ["pong"]
        [refused] = await chat.say("!cw link 123")
        assert refused.startswith(
            "ChatWars is not reachable right now (the ChatWars simulator cannot start: "
        )
        # Commands that need no game still work.
        assert (await chat.say("!cw alerts deals"))[0].startswith("This chat now gets")
        runtime = bot.plugin("chatwars")
    assert runtime.leaked == []


async def test_the_client_keeps_retrying_until_the_apps_queues_exist(
    bot_harness: Callable[..., Any], chatwars_app_url: str, rabbitmq_url: str
) -> None:
    app = f"late{uuid.uuid4().hex[:8]}"
    section = {
        "amqp_url": chatwars_app_url,
        "app": app,
        "reconnect_min_delay": 0.05,
        "reconnect_max_delay": 0.2,
    }
    async with bot_harness(plugins={"chatwars": section}) as bot:
        chat = bot.chat(kind="private")
        line = status_line(await chat.say("!status"))
        assert f"a queue or exchange of app {app} does not exist on the broker" in line
        sim = ChatWarsSimulator(
            rabbitmq_url, app, feed_exchange_prefix=f"{app}.", delete_on_stop=True
        )
        async with sim:
            assert await bot.client("chatwars").wait_connected(5)
            # The feed consumers start just after the connection: "degraded - not receiving
            # the feeds" for a moment on a loaded machine, then up.
            deadline = time.monotonic() + 10
            line = status_line(await chat.say("!status"))
            while line != "plugin chatwars: up" and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                line = status_line(await chat.say("!status"))
            assert line == "plugin chatwars: up"
            [info] = await chat.say("!cw balance", user="console", admin=True)
            assert info.startswith("The bot's ChatWars balance is 100,000 gold")


async def test_simulate_true_on_a_real_broker_runs_the_whole_demo(
    bot_harness: Callable[..., Any], rabbitmq_url: str
) -> None:
    app = f"emb{uuid.uuid4().hex[:8]}"
    section = {
        "simulate": True,
        "amqp_url": rabbitmq_url,
        "app": app,
        "simulator": {"feed_interval": 0, "seed": 7},
    }
    async with bot_harness(plugins={"chatwars": section}, admins={"console": ["boss"]}) as bot:
        chat = bot.chat(kind="private")
        assert status_line(await chat.say("!status")) == "plugin chatwars: up"
        # The simulated game has nobody to send codes to, so the demo shows them in chat.
        [linking] = await chat.say("!cw link 777", user="u1")
        code = linking.rsplit("the code is ", 1)[1].rstrip(".)")
        assert (await chat.say(f"!cw code {code}", user="u1"))[0].startswith(
            "Your ChatWars account is linked"
        )
        [question] = await chat.say("!cw profile", user="u1")
        approval = question.rsplit("the code is ", 1)[1].rstrip(".)")
        [profile] = await chat.say(approval, user="u1")
        assert "level" in profile
        [paying] = await chat.say("!cw pay 1", user="u1")
        confirmation = paying.rsplit("the code is ", 1)[1].rstrip(".)")
        [paid] = await chat.say(f"!cw confirm {confirmation}", user="u1")
        assert paid.startswith("Paid: 1 gold pouch went to the bot")
        [payout] = await boss(chat, "!cw payout u1 1 thanks")
        assert payout.startswith("Paid 1 gold pouch to Telegram user 777.")
        plugin = bot.plugin("chatwars")
        # The plugin's simulator, not a test's: it is owned and stopped by the plugin.
        assert plugin.tasks
    assert plugin.leaked == []
    assert plugin.client is None


async def test_bot_simulate_builds_the_simulator(bot_harness: Callable[..., Any]) -> None:
    url = f"amqp://guest:guest@127.0.0.1:{closed_port()}/"
    async with bot_harness(plugins={"chatwars": {"simulate": True, "amqp_url": url}}) as bot:
        sim = await bot.bot.plugins.call(
            "chatwars", "bot_simulator", argv=["--port", "5999", "--app", "x1", "--seed", "3"]
        )
        assert isinstance(sim, ChatWarsSimulator)
        assert sim.app == "x1" and sim.url.endswith("@127.0.0.1:5999/")


async def test_a_missing_feed_queue_makes_the_plugin_degraded_not_down(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator, rabbitmq_url: str
) -> None:
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(f"{chatwars_sim.app}_offers")
    async with chatwars_bot() as bot:
        line = status_line(await bot.chat(kind="private").say("!status"))
        assert line == (
            "plugin chatwars: degraded - Connected, but not receiving the feeds: offers (a "
            f"queue or exchange of app {chatwars_sim.app} does not exist on the broker)."
        )
        assert (await boss(bot.chat(kind="private"), "!cw balance"))[0].startswith(
            "The bot's ChatWars balance"
        )
