"""The plugin contract stays documented and exercised.

Fails when a hook in ``bot/hookspecs.py`` has no docstring or example, has no section in
``docs/hooks.md`` (or a section whose signature differs), or is implemented by no test; and a
probe plugin implementing every hook shows that the framework really calls each of them.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot import hookspecs
from bot.testing import BotHarness

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "hooks.md"


def hook_specs() -> dict[str, Callable[..., Any]]:
    return {
        name: fn for name, fn in vars(hookspecs).items() if callable(fn) and hasattr(fn, "bot_spec")
    }


def signature(fn: Callable[..., Any]) -> str:
    """``def name(arg: Type, ...) -> Return`` with the annotations as written."""
    sig = inspect.signature(fn)
    args = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"def {fn.__name__}({args}) -> {sig.return_annotation}"


def doc_sections() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    parts = re.split(r"^## ", text, flags=re.MULTILINE)[1:]
    return {part.split("\n", 1)[0].strip(): part for part in parts}


def test_there_are_hooks_to_check() -> None:
    assert {"bot_commands", "bot_startup", "bot_config_model"} <= set(hook_specs())


@pytest.mark.parametrize("name", sorted(hook_specs()))
def test_every_hook_has_a_docstring_with_an_example(name: str) -> None:
    doc = inspect.getdoc(hook_specs()[name]) or ""
    assert len(doc.split()) >= 15, f"{name} needs a docstring saying when it runs and returns"
    assert "Example::" in doc, f"{name}'s docstring needs an example"


@pytest.mark.parametrize("name", sorted(hook_specs()))
def test_every_hook_is_in_docs_hooks_md_with_its_signature(name: str) -> None:
    sections = doc_sections()
    assert name in sections, f"docs/hooks.md has no '## {name}' section"
    section = sections[name]
    expected = signature(hook_specs()[name])
    code = re.search(r"```python\n(.*?)\n```", section, flags=re.DOTALL)
    assert code is not None, f"the {name} section starts with no signature block"
    assert code.group(1).strip() == expected, "docs/hooks.md's signature is out of date"
    assert "**When:**" in section
    assert section.count("```python") >= 2, f"the {name} section needs an example"


def test_docs_hooks_md_documents_no_hook_that_does_not_exist() -> None:
    documented = {name for name in doc_sections() if name.startswith("bot_")}
    assert documented == set(hook_specs())


@pytest.mark.parametrize("name", sorted(hook_specs()))
def test_every_hook_is_implemented_by_some_test(name: str) -> None:
    implementation = re.compile(rf"^\s*(?:async\s+)?def\s+{name}\s*\(", re.MULTILINE)
    files = [
        path.relative_to(REPO).as_posix()
        for path in sorted((REPO / "tests").rglob("*.py"))
        if implementation.search(path.read_text(encoding="utf-8", errors="replace"))
    ]
    assert files, f"no test implements {name}"


PROBE = '''
import asyncio

from bot import Health, PluginConfig, Simulator, Topic, command, hookimpl
from sqlite_utils.migrations import Migrations

CALLS = []


class Config(PluginConfig):
    greeting: str = "hi"


class ProbeSimulator(Simulator):
    def __init__(self, port):
        self.port = port
        self.server = None

    async def start(self):
        self.server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", self.port)
        self.url = f"tcp://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def stop(self):
        self.server.close()
        await self.server.wait_closed()


migrations = Migrations("probe")


@migrations()
def m001_rows(db):
    db["probe_rows"].create({"id": int, "text": str}, pk="id")


def only_loud(filter, text, data):
    CALLS.append("matches")
    return data.get("loud", False)


@command()
async def probe(ctx, text: str) -> str:
    """Store text and publish it."""
    ctx.store.db["probe_rows"].insert({"text": text})
    ctx.plugin.publish("probe.events", text, {"loud": text.isupper()})
    return f"{ctx.config.greeting} {ctx.client}"


@hookimpl
def bot_config_model():
    CALLS.append("bot_config_model")
    return Config


@hookimpl
def bot_commands():
    CALLS.append("bot_commands")
    return [probe]


@hookimpl
def bot_migrations():
    CALLS.append("bot_migrations")
    return migrations


@hookimpl
def bot_alert_topics():
    CALLS.append("bot_alert_topics")
    return [Topic("probe.events", "Probe events", matches=only_loud)]


@hookimpl
async def bot_startup(plugin, config, bot):
    CALLS.append("bot_startup")
    assert bot is plugin.bot and config is plugin.config
    plugin.client = "client-ok"


@hookimpl
async def bot_shutdown(plugin):
    CALLS.append("bot_shutdown")


@hookimpl
async def bot_health(plugin):
    CALLS.append("bot_health")
    return Health.degraded("probing")


@hookimpl
def bot_simulator(argv):
    CALLS.append("bot_simulator")
    return ProbeSimulator(int(argv[argv.index("--port") + 1]))
'''


async def test_a_probe_implementing_every_hook_sees_each_one_called(
    bot_harness: Callable[..., BotHarness], tmp_path: Path
) -> None:
    (tmp_path / "probe.py").write_text(PROBE)
    harness = bot_harness(
        {"probe": {"greeting": "hello"}}, config={"bot": {"plugin_dirs": [str(tmp_path)]}}
    )
    async with harness as bot:
        module = bot.plugin("probe").module
        chat = bot.chat()
        bot.bot.alerts.subscribe(chat.platform, chat.chat_id, "probe.events", "only loud ones")
        assert await chat.say("!probe quiet") == ["hello client-ok"]
        assert await chat.say("!probe LOUD") == ["hello client-ok"]
        await bot.flush_alerts()
        assert [a.text for a in bot.alerts_sent] == ["LOUD"]
        assert [r["text"] for r in bot.bot.store.db["probe_rows"].rows] == ["quiet", "LOUD"]
        (status,) = await chat.say("!status")
        assert "plugin probe: degraded - probing" in status

        sim = await bot.bot.plugins.call("probe", "bot_simulator", argv=["--port", "0"])
        async with sim:
            assert sim.url.startswith("tcp://127.0.0.1:")
    calls = set(module.CALLS) - {"matches"}
    assert calls == set(hook_specs()), "hooks never called: " + ", ".join(
        sorted(set(hook_specs()) - calls)
    )
    assert "matches" in module.CALLS


async def test_a_hook_asking_for_an_argument_it_is_not_offered_is_refused(
    bot_harness: Callable[..., BotHarness], tmp_path: Path
) -> None:
    (tmp_path / "wrongargs.py").write_text(
        "from bot import hookimpl\n\n@hookimpl\ndef bot_startup(plugin, client):\n    pass\n"
    )
    harness = bot_harness({"wrongargs": {}}, config={"bot": {"plugin_dirs": [str(tmp_path)]}})
    async with harness as bot:
        reason = bot.failures["wrongargs"]
        assert reason.startswith("has a hook with wrong arguments")
        assert "client" in reason
        assert await bot.chat().say("!ping") == ["pong"]
