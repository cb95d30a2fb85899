"""The test harness plugin authors use with pytest (registered through ``pytest11``).

It runs the real bot (real dispatcher, store, plugin manager and alert router, a temporary
database) with an in-memory transport instead of a chat platform, so a plugin's commands can
be tested end to end against its simulator with no Discord or Telegram account::

    async def test_points(bot_harness):
        async with bot_harness(plugins={"deepbot": {"simulate": True}}) as bot:
            chat = bot.chat()
            assert await chat.say("!points alice", user="u1") == ["alice has 10.00 points"]

``say`` returns the replies once the command finished, or once it asks a question (then the
next ``say`` is the answer). Published alerts are captured in ``bot.alerts_sent``.

Plugin tests run as written wherever they live: unless a project chose an ``asyncio_mode``
itself (in its pytest config or on the command line), this plugin sets pytest-asyncio's
``auto`` mode, so ``async def`` tests and fixtures need no markers and no pytest config. What
the tests need is installed with ``pip install 'chatbot-framework[test]'``.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .commands import UserRef
from .config import config_from_dict
from .links import approve
from .messages import Message, Reply
from .transports.base import Transport

if TYPE_CHECKING:
    from .app import Bot
    from .plugins import PluginRuntime

import pytest

from .plugin_loading import import_plugin_directory

__all__ = ["BotHarness", "Chat", "FakeClock", "SentAlert", "bot_harness", "import_plugin_directory"]


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Default pytest-asyncio to ``auto`` mode where the project did not choose a mode.

    A plugin's tests are often copied out of this repository (whose pytest config says
    ``asyncio_mode = "auto"``) into a plugin directory with no pytest config; in strict mode
    their async fixtures fail with a message about pytest-asyncio that points nowhere near
    the cause. A mode set in an ini file, with ``-o`` or ``--asyncio-mode`` wins.
    """
    if getattr(config.option, "asyncio_mode", "unknown") is not None:
        return  # --asyncio-mode given, or pytest-asyncio not installed
    # pytest 9 deprecates ``inicfg`` without another way to tell "unset" from the default.
    ini = getattr(config, "_inicfg", None)
    if ini is None:
        ini = config.inicfg
    overrides = getattr(config.option, "override_ini", None) or []
    if "asyncio_mode" in ini or any(
        o.split("=", 1)[0].strip() == "asyncio_mode" for o in overrides
    ):
        return
    config.option.asyncio_mode = "auto"


class FakeClock:
    """A monotonic clock tests move by hand (cooldowns read the bot's clock)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass(frozen=True)
class SentAlert:
    platform: str
    chat_id: str
    text: str


class _Responder:
    def __init__(self, sink: list[Reply], log: list[Reply]) -> None:
        self.sink = sink
        self.log = log
        self.confirm_answer: bool | None = None

    async def send(self, reply: Reply) -> None:
        self.sink.append(reply)
        self.log.append(reply)

    async def confirm(self, question: str, timeout: float) -> bool | None:
        if self.confirm_answer is None:
            return None
        await self.send(Reply(question))
        return self.confirm_answer


class HarnessTransport(Transport):
    """An in-memory platform: records what the bot sends to chats."""

    max_length = 4000

    def __init__(self, harness: BotHarness, platform: str) -> None:
        super().__init__()
        self.platform = platform
        self.harness = harness

    async def start(self, bot: Bot) -> None:
        self.state = "up"

    async def stop(self) -> None:
        self.state = "stopped"

    async def send(self, chat_id: str, text: str) -> None:
        self.harness._record_alert(SentAlert(self.platform, chat_id, text))


@dataclass
class Chat:
    """One chat; ``say`` sends a message as a user and returns the bot's replies."""

    harness: BotHarness
    chat_id: str
    platform: str
    kind: str = "group"
    replies: list[Reply] = field(default_factory=list)

    async def say(
        self,
        text: str,
        *,
        user: str = "user1",
        name: str | None = None,
        admin: bool = False,
        confirm: bool | None = None,
        mentions: Mapping[str, UserRef] | None = None,
        extra: Mapping[str, Any] | None = None,
        id: str = "",
    ) -> list[str]:
        replies = await self.send(
            text,
            user=user,
            name=name,
            admin=admin,
            confirm=confirm,
            mentions=mentions,
            extra=extra,
            id=id,
        )
        return [r.text for r in replies]

    async def send(
        self,
        text: str,
        *,
        user: str = "user1",
        name: str | None = None,
        admin: bool = False,
        confirm: bool | None = None,
        mentions: Mapping[str, UserRef] | None = None,
        extra: Mapping[str, Any] | None = None,
        id: str = "",
    ) -> list[Reply]:
        """Like :meth:`say` but returns :class:`Reply` objects (with private/error flags).

        ``confirm`` answers a confirmation the command asks for as a button would (True or
        False); left None, confirmations are asked in text and the next ``say`` answers.
        ``extra`` is what a transport adds (``{"roles": [...]}`` on Discord). ``id`` is the
        platform's message id: the same id twice is a command delivered again (a cluster
        worker died mid-way), which money operations must not repeat.
        """
        sink: list[Reply] = []
        responder = _Responder(sink, self.replies)
        already = len(self.replies)
        responder.confirm_answer = confirm
        message = Message(
            platform=self.platform,
            chat_id=self.chat_id,
            user_id=str(user),
            user_name=name or str(user),
            text=text,
            responder=responder,
            chat_kind=self.kind,
            platform_admin=admin,
            mentions=dict(mentions or {}),
            extra=dict(extra or {}),
            id=id,
        )
        await self.harness.bot.dispatcher.process(message)
        # Replies to an earlier command that this message answered land in this chat too.
        return self.replies[already:]


class BotHarness:
    """Start a real bot with chosen plugins, a temporary database and config overrides."""

    def __init__(
        self,
        plugins: Mapping[str, Mapping[str, Any]] | list[str] | None = None,
        *,
        config: Mapping[str, Any] | None = None,
        directory: Path | None = None,
        owners: Mapping[str, list[str]] | None = None,
        admins: Mapping[str, list[str]] | None = None,
    ) -> None:
        if isinstance(plugins, list):
            plugins = {name: {} for name in plugins}
        self._plugins = dict(plugins or {})
        self._config = dict(config or {})
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.directory = directory
        self._owners = owners
        self._admins = admins
        self.clock = FakeClock()
        self.alerts_sent: list[SentAlert] = []
        self._alert_event = asyncio.Event()
        self._ids = itertools.count(1)
        self.bot: Bot
        self.chats: dict[tuple[str, str], Chat] = {}

    def _settings(self) -> dict[str, Any]:
        assert self.directory is not None
        bot_section = {
            "database": str(self.directory / "bot.db"),
            "alert_window": 0.05,
            "ask_timeout": 5.0,
        }
        if self._owners:
            bot_section["owners"] = dict(self._owners)
        if self._admins:
            bot_section["admins"] = dict(self._admins)
        data: dict[str, Any] = {
            "bot": bot_section,
            "transports": {"console": {"enabled": False}},
            "plugins": self._plugins,
        }
        for section, values in self._config.items():
            if isinstance(values, Mapping) and isinstance(data.get(section), dict):
                data[section] = {**data[section], **values}
            else:
                data[section] = values
        return data

    async def start(self) -> BotHarness:
        from .app import Bot

        if self.directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="bot-harness-")
            self.directory = Path(self._tmp.name)
        loaded = config_from_dict(self._settings(), base_dir=self.directory)
        self.bot = Bot(
            loaded,
            transports=[HarnessTransport(self, p) for p in ("console", "discord", "telegram")],
            clock=self.clock,
        )
        await self.bot.start()
        return self

    async def stop(self) -> None:
        await self.bot.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    async def __aenter__(self) -> BotHarness:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ chats

    def chat(
        self, chat_id: str = "chat1", *, platform: str = "console", kind: str = "group"
    ) -> Chat:
        key = (platform, chat_id)
        if key not in self.chats:
            self.chats[key] = Chat(self, chat_id, platform, kind)
        return self.chats[key]

    def plugin(self, name: str) -> PluginRuntime:
        return self.bot.plugins.runtimes[name]

    def client(self, name: str) -> Any:
        return self.bot.plugins.runtimes[name].client

    def state(self, name: str) -> Any:
        """What the plugin keeps between messages (``plugin.state``)."""
        return self.bot.plugins.runtimes[name].state

    @property
    def failures(self) -> dict[str, str]:
        return self.bot.plugins.failures

    # ------------------------------------------------------------------ links

    def approve_link(self, user: str, service: str, *, platform: str = "console") -> int:
        """Approve the user's pending link claim as an admin would (``links approve N``,
        without the chat round trip or the message to the claimant); returns its number."""
        pending = self.bot.store.pending_claim_for(platform, str(user), service)
        if pending is None:
            raise AssertionError(f"{platform}:{user} has no pending {service} claim")
        assert approve(self.bot, pending.id, "harness")
        return pending.id

    # ------------------------------------------------------------------ alerts

    def _record_alert(self, alert: SentAlert) -> None:
        self.alerts_sent.append(alert)
        self._alert_event.set()

    async def flush_alerts(self) -> list[SentAlert]:
        """Deliver buffered alerts now; returns everything sent so far."""
        await self.bot.alerts.flush()
        return list(self.alerts_sent)

    async def wait_for_alert(
        self,
        predicate: Callable[[SentAlert], bool] = lambda a: True,
        timeout: float = 5.0,
    ) -> SentAlert:
        """Wait until an alert satisfying ``predicate`` was delivered."""
        async with asyncio.timeout(timeout):
            while True:
                for alert in self.alerts_sent:
                    if predicate(alert):
                        return alert
                self._alert_event.clear()
                await self._alert_event.wait()


@pytest.fixture
def bot_harness(tmp_path: Path) -> Callable[..., Any]:
    """Factory: ``async with bot_harness(plugins={...}, config={...}) as bot: ...``."""
    counter = itertools.count()

    def make(
        plugins: Mapping[str, Mapping[str, Any]] | list[str] | None = None, **kwargs: Any
    ) -> BotHarness:
        directory = tmp_path / f"bot{next(counter)}"
        directory.mkdir()
        kwargs.setdefault("directory", directory)
        return BotHarness(plugins, **kwargs)

    return make
