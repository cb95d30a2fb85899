"""Hot reload: the new code runs, nothing of the old one is left, and failures roll back.

The plugin under test is written to a temporary plugin directory (``bot.plugin_dirs``) and
rewritten between reloads, as an author editing it would. It keeps a real TCP connection to a
small event server the test runs, publishes every line the server sends as an alert, starts a
scheduled job, and (like many client libraries) starts a task of its own with plain
``asyncio.create_task`` that it never stops: the framework must still own and end it.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.scaffold import create_plugin
from bot.testing import BotHarness

PLUGIN = '''
import asyncio

from bot import PluginConfig, Topic, command, hookimpl

VERSION = "@VERSION@"
__version__ = VERSION


class Config(PluginConfig):
    port: int
    @EXTRA_CONFIG@


class EventClient:
    """Publishes every line the event server sends as a counter.events alert."""

    def __init__(self, port, publish):
        self.port = port
        self.publish = publish
        self.connected = asyncio.Event()

    async def run(self):
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(f"hello from {VERSION}\\n".encode())
        self.connected.set()
        # Started without the plugin's help and never stopped: the framework owns it anyway.
        asyncio.create_task(self._keepalive(), name="counter-keepalive")
        try:
            while line := await reader.readline():
                self.publish("counter.events", f"v{VERSION}: {line.decode().strip()}")
        finally:
            writer.close()

    async def _keepalive(self):
        while True:
            await asyncio.sleep(3600)


async def poll():
    pass


@command("counter version")
async def version(ctx) -> str:
    """Which version of the code is running."""
    return VERSION


@hookimpl
def bot_config_model():
    return Config


@hookimpl
def bot_commands():
    return [version]


@hookimpl
def bot_alert_topics():
    return [Topic("counter.events", "Lines from the event server")]


@hookimpl
async def bot_startup(plugin, config):
    client = EventClient(config.port, plugin.publish)
    plugin.client = client
    plugin.create_task(client.run(), name="connection")
    plugin.every(3600, poll, name="poll")
    @FAIL@
'''


def plugin_source(version: int | str, *, extra_config: str = "", fail: str = "") -> str:
    return (
        PLUGIN.replace("@VERSION@", str(version))
        .replace("@EXTRA_CONFIG@", extra_config)
        .replace("@FAIL@", fail)
    )


class EventServer:
    """A line-based TCP server on 127.0.0.1 that counts its open connections."""

    def __init__(self) -> None:
        self.open: set[asyncio.StreamWriter] = set()
        self.accepted = 0
        self.greetings: list[str] = []
        self.changed = asyncio.Condition()
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.open):
            writer.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        await self._change(lambda: self.open.add(writer))
        try:
            while line := await reader.readline():
                greeting = line.decode().strip()
                await self._change(lambda g=greeting: self.greetings.append(g))
        except ConnectionError:
            pass
        finally:
            writer.close()
            await self._change(lambda: self.open.discard(writer))

    async def _change(self, change: Callable[[], Any]) -> None:
        async with self.changed:
            change()
            self.changed.notify_all()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 3.0) -> None:
        async with asyncio.timeout(timeout), self.changed:
            await self.changed.wait_for(predicate)

    async def broadcast(self, line: str) -> None:
        for writer in list(self.open):
            writer.write(line.encode() + b"\n")
            await writer.drain()


@pytest.fixture
async def event_server() -> AsyncIterator[EventServer]:
    server = EventServer()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def counter_dir(tmp_path: Path) -> Callable[..., Path]:
    """``write(source)`` (re)writes the plugin package and returns the plugin directory."""
    directory = tmp_path / "plugins"
    (directory / "counter").mkdir(parents=True)

    def write(source: str) -> Path:
        (directory / "counter" / "__init__.py").write_text(source)
        return directory

    return write


async def settled_tasks(expected: int) -> set[asyncio.Task[Any]]:
    """The loop's tasks once their number is back to ``expected`` (or after two seconds)."""
    tasks = asyncio.all_tasks()
    for _ in range(200):
        if len(tasks) <= expected:
            break
        await asyncio.sleep(0.01)
        tasks = asyncio.all_tasks()
    return tasks


def names(tasks: set[asyncio.Task[Any]]) -> list[str]:
    return sorted(t.get_name() for t in tasks if not t.get_name().startswith("Task-"))


async def start_bot(
    bot_harness: Callable[..., BotHarness], directory: Path, port: int
) -> BotHarness:
    bot = bot_harness(
        plugins={"counter": {"port": port}},
        config={"bot": {"plugin_dirs": [str(directory)]}},
    )
    return await bot.start()


async def test_twenty_reloads_leak_no_task_connection_or_alert(
    bot_harness: Callable[..., BotHarness],
    event_server: EventServer,
    counter_dir: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Edits below keep the file's size and land within one second: with bytecode caching on
    # (as in production), a reload that trusted the cache would run the old code.
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    bot = await start_bot(bot_harness, counter_dir(plugin_source(0)), event_server.port)
    try:
        chat = bot.chat()
        bot.bot.alerts.subscribe(chat.platform, chat.chat_id, "counter.events")
        await event_server.wait_until(lambda: len(event_server.open) == 1)
        assert await chat.say("!counter version") == ["0"]
        baseline = asyncio.all_tasks()
        plugin_task_names = names(baseline)
        assert "counter:connection" in plugin_task_names
        assert "counter-keepalive" in plugin_task_names

        for version in range(1, 21):
            counter_dir(plugin_source(version))
            old = bot.plugin("counter")
            replies = await chat.say("!plugins reload counter", user="boss", admin=True)
            assert replies == [f"counter reloaded (version {version})."]
            # The task it never registered was found and cancelled with the old version.
            assert old.leaked == ["counter-keepalive"]
            assert old.tasks == frozenset()
            await event_server.wait_until(
                lambda v=version: (
                    len(event_server.open) == 1 and f"hello from {v}" in event_server.greetings
                )
            )
            assert await chat.say("!counter version") == [str(version)]

        assert event_server.accepted == 21
        assert len(event_server.open) == 1
        after = await settled_tasks(len(baseline))
        assert len(after) == len(baseline), names(after)
        assert names(after) == plugin_task_names
        assert [t.name for t in bot.bot.alerts.topics.values() if t.owner == "counter"] == [
            "counter.events"
        ]

        await event_server.broadcast("door opened")
        await bot.wait_for_alert(lambda a: "door opened" in a.text)
        await asyncio.sleep(0.15)  # several alert windows: room for any duplicate to arrive
        await bot.flush_alerts()
        lines = [line for a in bot.alerts_sent for line in a.text.splitlines()]
        assert lines == ["v20: door opened"]
    finally:
        await bot.stop()
    assert len(event_server.open) == 0 or await _closed(event_server)


async def _closed(server: EventServer) -> bool:
    await server.wait_until(lambda: not server.open)
    return True


async def test_new_code_that_fails_to_import_leaves_the_old_version_untouched(
    bot_harness: Callable[..., BotHarness],
    event_server: EventServer,
    counter_dir: Callable[..., Path],
) -> None:
    bot = await start_bot(bot_harness, counter_dir(plugin_source(1)), event_server.port)
    try:
        chat = bot.chat()
        await event_server.wait_until(lambda: len(event_server.open) == 1)
        for broken, why in (
            ("VERSION = (\n", "SyntaxError"),
            ("import no_such_module_anywhere\n", "No module named 'no_such_module_anywhere'"),
            (
                plugin_source(2, extra_config="colour: str"),
                "plugins.counter.colour: Field required",
            ),
            (plugin_source(2).replace("def bot_commands", "def bot_comands"), "bot_comands"),
        ):
            counter_dir(broken)
            (reply,) = await chat.say("!plugins reload counter", user="boss", admin=True)
            assert reply.startswith("reload of counter failed, the old version keeps running")
            assert why in reply
            assert await chat.say("!counter version") == ["1"]
        # Untouched: the same connection, never closed and reopened.
        assert event_server.accepted == 1
        assert len(event_server.open) == 1
        assert bot.bot.plugins.failures == {}

        counter_dir(plugin_source(3))
        assert await chat.say("!plugins reload counter", user="boss", admin=True) == [
            "counter reloaded (version 3)."
        ]
        assert await chat.say("!counter version") == ["3"]
    finally:
        await bot.stop()


async def test_new_code_that_fails_to_start_is_torn_down_and_the_old_one_restarted(
    bot_harness: Callable[..., BotHarness],
    event_server: EventServer,
    counter_dir: Callable[..., Path],
) -> None:
    bot = await start_bot(bot_harness, counter_dir(plugin_source(1)), event_server.port)
    try:
        chat = bot.chat()
        await event_server.wait_until(lambda: len(event_server.open) == 1)
        baseline = asyncio.all_tasks()
        # Version 2 connects (so there is something to tear down), then fails.
        fail = "await client.connected.wait(); raise RuntimeError('the API refused version 2')"
        counter_dir(plugin_source(2, fail=fail))
        (reply,) = await chat.say("!plugins reload counter", user="boss", admin=True)
        assert reply == (
            "reload of counter failed to start, the old version is running again: "
            "RuntimeError: the API refused version 2"
        )
        assert await chat.say("!counter version") == ["1"]
        assert bot.plugin("counter").version == "1"
        await event_server.wait_until(
            lambda: len(event_server.open) == 1 and event_server.accepted == 3
        )
        # v1, then v2 (connected, failed, torn down), then v1 again.
        await event_server.wait_until(lambda: len(event_server.greetings) == 3)
        assert sorted(event_server.greetings) == ["hello from 1", "hello from 1", "hello from 2"]
        after = await settled_tasks(len(baseline))
        assert names(after) == names(baseline)
    finally:
        await bot.stop()


async def test_disable_tears_everything_down_and_enable_brings_it_back(
    bot_harness: Callable[..., BotHarness],
    event_server: EventServer,
    counter_dir: Callable[..., Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    bot = await start_bot(bot_harness, counter_dir(plugin_source(1)), event_server.port)
    try:
        chat = bot.chat()
        await event_server.wait_until(lambda: len(event_server.open) == 1)
        runtime = bot.plugin("counter")
        with caplog.at_level(logging.WARNING, logger="bot.plugin.counter"):
            assert await chat.say("!plugins disable counter", user="boss", admin=True) == [
                "counter disabled."
            ]
        assert "left 1 task(s) running after its clean-up; cancelling: counter-keepalive" in (
            caplog.text
        )
        await event_server.wait_until(lambda: not event_server.open)
        assert not [n for n in names(asyncio.all_tasks()) if n.startswith("counter")]
        assert runtime.client is None
        with pytest.raises(RuntimeError, match="has stopped"):
            runtime.create_task(asyncio.sleep(0))
        assert "counter.events" not in bot.bot.alerts.topics
        assert (await chat.say("!counter version"))[0].startswith("Unknown command")

        assert await chat.say("!plugins enable counter", user="boss", admin=True) == [
            "counter enabled."
        ]
        await event_server.wait_until(lambda: len(event_server.open) == 1)
        assert await chat.say("!counter version") == ["1"]
    finally:
        await bot.stop()


async def test_two_admins_reloading_at_once_get_two_clean_reloads(
    bot_harness: Callable[..., BotHarness],
    event_server: EventServer,
    counter_dir: Callable[..., Path],
) -> None:
    bot = await start_bot(bot_harness, counter_dir(plugin_source(1)), event_server.port)
    try:
        await event_server.wait_until(lambda: len(event_server.open) == 1)
        counter_dir(plugin_source(2))
        first, second = await asyncio.gather(
            bot.chat("a").say("!plugins reload counter", user="boss", admin=True),
            bot.chat("b").say("!plugins reload counter", user="root", admin=True),
        )
        assert first == second == ["counter reloaded (version 2)."]
        await event_server.wait_until(
            lambda: len(event_server.open) == 1 and event_server.accepted == 3
        )
        assert len([t for t in asyncio.all_tasks() if t.get_name() == "counter:connection"]) == 1
    finally:
        await bot.stop()


async def test_reload_refusals(bot_harness: Callable[..., BotHarness]) -> None:
    async with bot_harness() as bot:
        chat = bot.chat()
        assert await chat.say("!plugins reload core", user="boss", admin=True) == [
            "the core plugin cannot be reloaded"
        ]
        assert await chat.say("!plugins reload nosuch", user="boss", admin=True) == [
            "no plugin named 'nosuch'"
        ]
        assert await chat.say("!plugins reload core", user="pleb") == [
            "This command is for admins only."
        ]


# ------------------------------------------------------------------ package-shaped plugins
#
# The scaffold and the tutorial's parcels both import a package global from a submodule of
# the same name (``from .migrations import migrations``), which a careless roll-back of the
# modules overwrites with the submodule itself.

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

#: replaces the plugin's bot_startup: the new code imports and validates, then fails to start
FAILING_STARTUP = """

@hookimpl
async def bot_startup(plugin, config):
    raise RuntimeError("the API refused the new version")
"""


@pytest.fixture
def isolated_plugin_modules() -> Iterator[None]:
    """Keep ``bot_ext_*`` modules this test imports from leaking into later tests."""
    before = {n: m for n, m in sys.modules.items() if n.startswith("bot_ext_")}
    yield
    for name in [n for n in sys.modules if n.startswith("bot_ext_")]:
        del sys.modules[name]
    sys.modules.update(before)


def _scaffolded(root: Path) -> tuple[str, Path, str]:
    create_plugin("shop", root)
    return "shop", root / "plugins", "!shop apple"


def _parcels(root: Path) -> tuple[str, Path, str]:
    shutil.copytree(EXAMPLES / "parcels", root / "plugins" / "parcels")
    return "parcels", root / "plugins", "!track PX-1001"


SHAPES = {"scaffold": _scaffolded, "parcels": _parcels}
BREAKS = {
    "import": ("client.py", "\ndef broken(:\n", "SyntaxError"),
    "startup": ("__init__.py", FAILING_STARTUP, "RuntimeError: the API refused the new version"),
}


@pytest.mark.usefixtures("isolated_plugin_modules")
@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("failure", sorted(BREAKS))
async def test_a_package_plugin_survives_a_failed_reload_then_disable_and_enable(
    bot_harness: Callable[..., BotHarness], tmp_path: Path, shape: str, failure: str
) -> None:
    name, directory, ask = SHAPES[shape](tmp_path)
    bot = bot_harness(
        plugins={name: {"simulate": True}},
        config={"bot": {"plugin_dirs": [str(directory)]}},
    )
    async with bot:
        chat = bot.chat()
        before = await chat.say(ask)
        assert not before[0].startswith(("Unknown command", "Sorry")), before

        file, change, why = BREAKS[failure]
        source = directory / name / file
        good = source.read_text()
        source.write_text(good + change)
        (reply,) = await chat.say(f"!plugins reload {name}", user="boss", admin=True)
        if failure == "import":
            assert reply.startswith(f"reload of {name} failed, the old version keeps running")
        else:
            assert reply.startswith(
                f"reload of {name} failed to start, the old version is running again"
            )
        assert why in reply
        assert await chat.say(ask) == before
        assert f"plugin {name}: up" in (await chat.say("!status"))[0]

        # The code on disk is still broken: enable starts the version that last ran.
        assert await chat.say(f"!plugins disable {name}", user="boss", admin=True) == [
            f"{name} disabled."
        ]
        assert await chat.say(f"!plugins enable {name}", user="boss", admin=True) == [
            f"{name} enabled."
        ]
        assert await chat.say(ask) == before
        assert bot.bot.plugins.failures == {}

        source.write_text(good)
        assert await chat.say(f"!plugins reload {name}", user="boss", admin=True) == [
            f"{name} reloaded (version {bot.plugin(name).version})."
        ]
        assert await chat.say(ask) == before


async def test_a_failed_reload_of_a_stopped_plugin_says_so_and_status_lists_it(
    bot_harness: Callable[..., BotHarness],
    event_server: EventServer,
    counter_dir: Callable[..., Path],
) -> None:
    bot = await start_bot(bot_harness, counter_dir(plugin_source(1)), event_server.port)
    try:
        chat = bot.chat()
        assert await chat.say("!plugins disable counter", user="boss", admin=True) == [
            "counter disabled."
        ]
        fail = "raise RuntimeError('the API refused')"
        counter_dir(plugin_source(2, fail=fail))
        (reply,) = await chat.say("!plugins reload counter", user="boss", admin=True)
        # It was not running, so no old version keeps running.
        assert reply == ("reload of counter failed to start: RuntimeError: the API refused")
        assert (
            "plugin counter: down - RuntimeError: the API refused" in (await chat.say("!status"))[0]
        )
        counter_dir("VERSION = (\n")
        (reply,) = await chat.say("!plugins reload counter", user="boss", admin=True)
        assert reply.startswith("reload of counter failed (it was not running): SyntaxError")
        assert "plugin counter: down - SyntaxError" in (await chat.say("!status"))[0]
        # Enable starts the version that last ran; only reload reads the disk.
        assert await chat.say("!plugins enable counter", user="boss", admin=True) == [
            "counter enabled."
        ]
        assert await chat.say("!counter version") == ["1"]
        counter_dir(plugin_source(3))
        assert await chat.say("!plugins reload counter", user="boss", admin=True) == [
            "counter reloaded (version 3)."
        ]
        assert "plugin counter: up" in (await chat.say("!status"))[0]
    finally:
        await bot.stop()


async def test_enable_of_a_plugin_that_fails_to_start_answers_why_and_keeps_it_listed(
    bot_harness: Callable[..., BotHarness],
    event_server: EventServer,
    counter_dir: Callable[..., Path],
) -> None:
    fail = "raise RuntimeError('the API refused')"
    directory = counter_dir(plugin_source(1, fail=fail))
    bot = await start_bot(bot_harness, directory, event_server.port)
    try:
        chat = bot.chat()
        for _ in range(2):
            (reply,) = await chat.say("!plugins enable counter", user="boss", admin=True)
            assert reply == "Could not enable counter: RuntimeError: the API refused"
            assert (
                "plugin counter: down - RuntimeError: the API refused"
                in (await chat.say("!status"))[0]
            )
        assert not [n for n in names(asyncio.all_tasks()) if n.startswith("counter")]
    finally:
        await bot.stop()
