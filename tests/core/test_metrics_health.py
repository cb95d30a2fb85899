"""/readyz over a real listener, against the DeepBot simulator stopped and started again."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from bot_plugins.deepbot.simulator import DeepBotSimulator

SECRET = "readyz-secret-51f0a2"


async def wait_for_status(http: httpx.AsyncClient, code: int, within: float = 20.0) -> Any:
    """Poll /readyz until it answers ``code`` (generous: the machine may be loaded)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        response = await http.get("/readyz")
        if response.status_code == code:
            return response.json()
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"/readyz stayed {response.status_code}: {response.text}")
        await asyncio.sleep(0.05)


async def test_readyz_names_the_plugin_whose_api_is_down_and_recovers(bot_harness: Any) -> None:
    sim = DeepBotSimulator(secret=SECRET)
    await sim.start()
    port = sim.port
    section = {
        "url": sim.url,
        "secret": SECRET,
        "timeout": 1.0,
        "reconnect_min_delay": 0.02,
        "reconnect_max_delay": 0.2,
    }
    config = {"bot": {"metrics": {"listen": "127.0.0.1:0"}}}
    try:
        async with bot_harness({"deepbot": section}, config=config) as bot:
            await bot.client("deepbot").wait_connected(10.0)
            async with httpx.AsyncClient(base_url=bot.bot.ops.url, timeout=10.0) as http:
                ready = await wait_for_status(http, 200)
                assert ready["ready"] is True and ready["not_ready"] == []
                assert "plugin deepbot: up" in ready["status"]

                await sim.stop()
                body = await wait_for_status(http, 503)
                assert body["ready"] is False
                (down,) = body["not_ready"]
                assert (down["kind"], down["name"], down["state"]) == ("plugin", "deepbot", "down")
                assert down["reason"]
                # the same words as the status command
                (status,) = await bot.chat().say("!status")
                line = f"plugin deepbot: down - {down['reason']}"
                assert line in body["status"]
                assert line in status.splitlines()
                assert SECRET not in str(body)
                metrics = (await http.get("/metrics")).text
                assert 'bot_connection_up{kind="plugin",name="deepbot"} 0.0' in metrics

                sim = DeepBotSimulator(secret=SECRET, port=port)
                await sim.start()
                ready = await wait_for_status(http, 200)
                assert ready["not_ready"] == []
    finally:
        await sim.stop()


async def test_readyz_names_a_plugin_that_failed_to_start(bot_harness: Any) -> None:
    config = {"bot": {"metrics": {"listen": "127.0.0.1:0"}}}
    async with bot_harness({"nosuchplugin": {}}, config=config) as bot:
        async with httpx.AsyncClient(base_url=bot.bot.ops.url, timeout=10.0) as http:
            response = await http.get("/readyz")
    assert response.status_code == 503
    (down,) = response.json()["not_ready"]
    assert down == {
        "kind": "plugin",
        "name": "nosuchplugin",
        "state": "down",
        "reason": "no plugin named 'nosuchplugin' is installed",
    }
