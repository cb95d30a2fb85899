"""Metrics over a real listener: counters and histograms by label, nothing private in a scrape.

The bot runs with ``bot.metrics.listen`` on a free port; every assertion reads what a
Prometheus server would read, over HTTP, parsed with ``prometheus_client``'s own parser.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.config import config_from_dict
from bot.errors import ConfigError

PROBE = '''
import asyncio

from bot import Permission, ServiceError, ServiceTimeout, command, hookimpl

class ProbeClient:
    """Stands in for a protocol client: awaited calls, a sync helper, an attribute."""

    region = "eu"

    async def lookup(self, name):
        if name == "nobody":
            raise ServiceError("no such viewer", service="probe", code="404")
        if name == "silent":
            raise ServiceTimeout("no answer", service="probe")
        return name.upper()

    def describe(self, name):
        return f"{name} in {self.region}"

    def later(self):
        return asyncio.get_running_loop().create_task(self.lookup("later"))

@command("probe look")
async def look(ctx, name: str) -> str:
    """Ask the outside API."""
    return await ctx.client.lookup(name) + " / " + ctx.client.describe(name)

@command("probe later")
async def later(ctx) -> str:
    """A client method that hands back a Task: the caller keeps a Task."""
    task = ctx.client.later()
    assert isinstance(task, asyncio.Task), type(task)
    return await task

@command("probe boom")
async def boom(ctx) -> str:
    """A bug."""
    raise RuntimeError("kaboom with the private detail")

@command("probe admin", permission=Permission.ADMIN)
async def admin(ctx, n: int) -> str:
    """Admins only."""
    return f"n={n}"

@command("probe publish")
async def publish(ctx, n: int) -> str:
    """Publish n alerts."""
    for i in range(n):
        ctx.plugin.publish("probe.news", f"news {i}")
    return "published"

@hookimpl
def bot_startup(plugin):
    plugin.client = ProbeClient()

@hookimpl
def bot_commands():
    return [look, later, boom, admin, publish]

@hookimpl
def bot_alert_topics():
    from bot import Topic
    return [Topic("probe.news", "News")]
'''

USER = "user-8675309"
CHAT = "chat-5551234"
DEEPBOT_SECRET = "deepbot-secret-4c1d9e"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape as {(name, labels): value}."""
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, frozenset(s.labels.items()))] = s.value
    return found


def value(found: dict[Any, float], metric: str, /, **labels: str) -> float | None:
    return found.get((metric, frozenset(labels.items())))


@pytest.fixture
def probe(plugin_dir: Callable[..., Path]) -> dict[str, Any]:
    directory = plugin_dir(probe=PROBE)
    return {"plugin_dirs": [str(directory)], "metrics": {"listen": "127.0.0.1:0"}}


async def test_a_scrape_after_commands_has_counts_by_label_and_nothing_private(
    bot_harness: Any, probe: dict[str, Any]
) -> None:
    plugins = {"probe": {}, "deepbot": {"simulate": True, "secret": DEEPBOT_SECRET}}
    async with bot_harness(plugins, config={"bot": probe}, admins={"console": ["boss"]}) as bot:
        assert bot.failures == {}
        chat = bot.chat(CHAT)
        assert await chat.say("!probe look alice", user=USER) == ["ALICE / alice in eu"]
        assert await chat.say("!probe look nobody", user=USER) == ["no such viewer"]
        assert await chat.say("!probe look silent", user=USER) == ["no answer"]
        assert await chat.say("!probe later", user=USER) == ["LATER"]
        (apology,) = await chat.say("!probe boom", user=USER)
        assert "error id" in apology
        await chat.say("!probe admin 3", user=USER)  # not an admin
        await chat.say("!probe admin three", user="boss")  # a usage error
        assert await chat.say("!probe admin 4", user="boss") == ["n=4"]
        assert await chat.say("!points alice", user=USER) == ["alice has 500.00 points"]
        await chat.say("!probe publish 3", user=USER)
        bot.bot.store.ledger_create(
            service="probe", kind="pay", platform="console", user_id=USER, account="a", amount=5
        )
        entry = bot.bot.store.ledger_create(
            service="probe", kind="pay", platform="console", user_id=USER, account="b", amount=7
        )
        bot.bot.store.ledger_update(entry.transaction_id, status="unknown")
        settled = bot.bot.store.ledger_create(
            service="probe", kind="pay", platform="console", user_id=USER, account="c", amount=9
        )
        bot.bot.store.ledger_update(settled.transaction_id, status="done")

        async with httpx.AsyncClient(base_url=bot.bot.ops.url) as http:
            response = await http.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        text = response.text
        found = samples(text)

    def commands(command: str, outcome: str, plugin: str = "probe") -> float | None:
        return value(
            found,
            "bot_commands_total",
            command=command,
            plugin=plugin,
            platform="console",
            outcome=outcome,
        )

    assert commands("probe look", "ok") == 1
    assert commands("probe look", "refused") == 1  # the API said no
    assert commands("probe look", "failed") == 1  # the API did not answer
    assert commands("probe boom", "failed") == 1
    assert commands("probe admin", "refused") == 1
    assert commands("probe admin", "user_error") == 1
    assert commands("probe admin", "ok") == 1
    assert commands("points", "ok", plugin="deepbot") == 1
    lat = {"command": "probe look", "plugin": "probe", "platform": "console"}
    assert value(found, "bot_command_duration_seconds_count", **lat) == 3
    assert value(found, "bot_command_duration_seconds_bucket", **lat, le="+Inf") == 3

    def api(plugin: str, call: str, outcome: str) -> float | None:
        return value(found, "bot_api_calls_total", plugin=plugin, call=call, outcome=outcome)

    assert api("probe", "lookup", "ok") == 1
    assert api("probe", "lookup", "refused") == 1
    assert api("probe", "lookup", "timeout") == 1
    assert api("deepbot", "get_points", "ok") == 1
    assert value(found, "bot_api_call_duration_seconds_count", plugin="probe", call="lookup") == 3
    # a synchronous helper is no API call
    assert not any(n == "bot_api_calls_total" and ("call", "describe") in ls for n, ls in found)

    assert value(found, "bot_connection_up", kind="plugin", name="deepbot") == 1
    assert value(found, "bot_connection_up", kind="plugin", name="probe") == 1
    assert value(found, "bot_connection_up", kind="transport", name="console") == 1
    assert value(found, "bot_connection_state", kind="plugin", name="deepbot", state="up") == 1
    assert value(found, "bot_ledger_rows", service="probe", state="pending") == 1
    assert value(found, "bot_ledger_rows", service="probe", state="unknown") == 1
    assert value(found, "bot_ledger_rows", service="probe", state="done") == 1  # settled
    assert value(found, "bot_alerts_total", stage="published") == 3

    for private in (USER, CHAT, DEEPBOT_SECRET, "kaboom", "boss", "alice"):
        assert private not in text, private


async def test_alerts_delivered_coalesced_and_dropped_are_counted(
    bot_harness: Any, probe: dict[str, Any]
) -> None:
    async with bot_harness({"probe": {}}, config={"bot": probe}) as bot:
        chat = bot.chat(CHAT)
        await chat.say("!probe publish 1")  # no subscriber yet: published, nothing queued
        bot.bot.alerts.subscribe("console", CHAT, "probe.news")
        await chat.say("!probe publish 205")  # one buffer holds 200 lines; 5 are left out
        await bot.flush_alerts()
        bot.bot.alerts.subscribe("matrix", "room1", "probe.news")  # no such transport runs
        await chat.say("!probe publish 2")
        await bot.flush_alerts()
        async with httpx.AsyncClient(base_url=bot.bot.ops.url) as http:
            found = samples((await http.get("/metrics")).text)
    assert value(found, "bot_alerts_total", stage="published") == 208
    assert value(found, "bot_alerts_total", stage="delivered") == 2  # 205 events, then 2
    assert value(found, "bot_alerts_total", stage="coalesced") == 199 + 1
    assert value(found, "bot_alerts_total", stage="dropped") == 5 + 2


async def test_rate_limit_waits_are_counted(bot_harness: Any, probe: dict[str, Any]) -> None:
    from bot_plugins.concertpos.ratelimit import RateBudget

    async with bot_harness({"probe": {}}, config={"bot": probe}) as bot:
        budget = RateBudget(limit=10, window=0.2, margin=0.0)
        first = await budget.acquire(10, max_wait=5.0)
        budget.mark_sent(first)
        await budget.acquire(5, max_wait=5.0)  # must wait for the window to pass
        async with httpx.AsyncClient(base_url=bot.bot.ops.url) as http:
            found = samples((await http.get("/metrics")).text)
    assert value(found, "bot_rate_limit_waits_total", limiter="concertpos") == 1
    waited = value(found, "bot_rate_limit_wait_seconds_total", limiter="concertpos")
    assert waited is not None and 0 < waited <= 0.2


async def test_healthz_answers_while_the_loop_runs(bot_harness: Any, probe: dict[str, Any]) -> None:
    async with bot_harness({"probe": {}}, config={"bot": probe}) as bot:
        url = bot.bot.ops.url
        async with httpx.AsyncClient(base_url=url) as http:
            response = await http.get("/healthz")
            assert response.status_code == 200
            assert response.json()["status"] == "ok"
            assert (await http.get("/nothing-here")).status_code == 404
    async with httpx.AsyncClient(base_url=url) as http:  # stopped: nothing listens any more
        with pytest.raises(httpx.ConnectError):
            await http.get("/healthz")


def test_listen_must_be_host_and_port() -> None:
    for bad in ("9464", "localhost", "localhost:http", ":9464", "host:70000"):
        with pytest.raises(ConfigError, match=r"bot\.metrics\.listen.*host:port"):
            config_from_dict({"bot": {"metrics": {"listen": bad}}})
    loaded = config_from_dict({"bot": {"metrics": {"listen": "[::1]:9464"}}})
    assert loaded.settings.bot.metrics.address() == ("::1", 9464)


def test_without_bot_metrics_nothing_listens_and_prometheus_is_not_imported(
    tmp_path: Path,
) -> None:
    """The embedded default: a bot that runs commands without metrics loads neither the
    exporter nor the web server (start-up time and memory are measured elsewhere)."""
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from bot.testing import BotHarness

        async def main():
            async with BotHarness(directory=__import__("pathlib").Path({str(tmp_path)!r})) as h:
                assert h.bot.ops is None
                assert await h.chat().say("!ping")
            print(sorted(m for m in ("prometheus_client", "aiohttp") if m in sys.modules))

        asyncio.run(main())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]"


def test_plugins_health_does_not_take_the_running_bots_metrics_port(
    tmp_path: Path, capsys: Any
) -> None:
    from bot.cli import main

    with socket.socket() as held:  # the running bot's listener
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        config = tmp_path / "bot.yaml"
        config.write_text(f"bot:\n  metrics:\n    listen: 127.0.0.1:{port}\n")
        assert main(["plugins", "--health", "--wait", "0", "--config", str(config)]) == 0
    assert "core" in capsys.readouterr().out
    assert not (tmp_path / "bot.db").exists()


async def test_api_calls_of_plugins_that_reach_their_client_through_a_service(
    bot_harness: Any, probe: dict[str, Any]
) -> None:
    """Games keeps its client behind a service object (``service.api()``), not ``ctx.client``."""
    async with bot_harness({"games": {"simulate": True}}, config={"bot": probe}) as bot:
        assert bot.failures == {}
        (listing,) = await bot.chat().say("!games")
        async with httpx.AsyncClient(base_url=bot.bot.ops.url) as http:
            found = samples((await http.get("/metrics")).text)
    assert listing
    assert value(found, "bot_api_calls_total", plugin="games", call="list_games", outcome="ok")
