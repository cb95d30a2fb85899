"""The Telegram transport end to end: the real bot, the real python-telegram-bot, a fake Bot API.

Each test runs the whole bot (store, plugin manager, dispatcher, alert router) with only the
Telegram transport enabled, pointed at the fake Bot API on 127.0.0.1 through the transport's
own ``base_url`` / ``base_file_url`` settings, and a small plugin written to a temporary
directory. What the bot sends is read back from the fake's call log.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_telegram import DEFAULT_TOKEN, Call, FakeTelegram, TgUser

from bot.app import Bot
from bot.commands import Permission, Registry, command
from bot.config import config_from_dict
from bot.errors import ConfigError
from bot.messages import CollectingResponder, Message
from bot.transports.telegram import TelegramTransport
from bot.transports.telegram.commands import (
    MAX_COMMANDS,
    build_menu,
    command_body,
    parse_slash,
    telegram_name,
    wanted_menus,
)
from bot.transports.telegram.text import split_text, to_html, utf16_len

# AIORateLimiter and our limiter read RetryAfter.retry_after, which warns about its future type.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

ALICE = TgUser(5001, "Alice", "alice_tg")  # a configured bot admin
BOB = TgUser(5002, "Bob", "bob_tg")
CAROL = TgUser(5003, "Carol", "carol_tg")  # an administrator of GROUP on Telegram
EVIL = TgUser(5004, "<b>evil</b> & co", None)
DAVE = TgUser(5005, "Dave", "dave_tg")  # a configured admin who never opened the bot
GROUP = -100_200_300

PLUGIN = '''
from bot import Permission, Rest, Topic, UserRef, command, hookimpl, subscription_command


@command()
async def echo(ctx, who: str, n: int, note: Rest | None = None) -> str:
    """Repeat the arguments back.

    Args:
        who: a name
        n: a count
        note: anything else
    """
    return f"{who} x{n}: {note}"


@command()
async def whoami(ctx) -> str:
    """Say who you are."""
    return f"You are {ctx.user_name} ({ctx.platform}:{ctx.user_id}), admin={ctx.is_admin}"


@command("points")
async def points(ctx, user: UserRef | None = None) -> str:
    """Show a viewer's points."""
    return f"{user.name if user else ctx.user_name} has 10 points"


@command("points top")
async def points_top(ctx) -> str:
    """The best viewers."""
    return "1. alice"


@command("points add", permission=Permission.ADMIN)
async def points_add(ctx, user: UserRef, n: int) -> str:
    """Give points to a viewer."""
    return f"Gave {n} points to {user.name} (id {user.id})"


@command(permission=Permission.ADMIN)
async def wipe(ctx) -> str:
    """Wipe everything."""
    return "Wiped."


@command()
async def long(ctx, lines: int) -> str:
    """A long reply."""
    return "\\n".join(f"line {i:04d} <&> " + "x" * 90 for i in range(lines))


@command()
async def close(ctx, game: int) -> str:
    """Close a game after a confirmation."""
    if await ctx.confirm(f"Close game {game} <now>?"):
        return f"Game {game} closed."
    return f"Game {game} stays open."


@command(private=True)
async def balance(ctx) -> str:
    """Your balance, privately."""
    return "Your balance is 42."


@command()
async def code(ctx) -> str:
    """Ask for a code."""
    answer = await ctx.ask("Send me the code.")
    return f"Got {answer}"


@command()
async def shout(ctx, text: Rest) -> str:
    """Publish an alert."""
    ctx.plugin.publish("tgtest.news", text.upper())
    return "Published."


@hookimpl
def bot_alert_topics():
    return [Topic("tgtest.news", "News")]


@hookimpl
def bot_commands():
    return [echo, whoami, points, points_top, points_add, wipe, long, close, balance, code,
            shout, subscription_command("news", "tgtest.news")]
'''

EXTRA = '''
from bot import command, hookimpl


@command()
async def hello(ctx) -> str:
    """Say hello."""
    return "hello"


@hookimpl
def bot_commands():
    return [hello]
'''


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or predicate}")
        await asyncio.sleep(0.01)


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        server.add_chat({"id": ALICE.id, "type": "private", "first_name": ALICE.first_name})
        server.add_chat({"id": GROUP, "type": "supergroup", "title": "Fans"})
        yield server
    assert not server.errors, f"the fake itself failed: {server.errors}"


def telegram_section(fake: FakeTelegram, **overrides: Any) -> dict[str, Any]:
    section: dict[str, Any] = {
        "enabled": True,
        "token": fake.token,
        "base_url": fake.base_url,
        "base_file_url": fake.base_file_url,
        "poll_timeout": 2,
        "request_timeout": 5,
        "reconnect_min": 0.05,
        "reconnect_max": 0.2,
        "confirm_timeout": 5,
        "menu_check_interval": 0.1,
    }
    section.update(overrides)
    return section


@contextlib.asynccontextmanager
async def running_bot(
    tmp_path: Path,
    fake: FakeTelegram,
    *,
    plugins: dict[str, str] | None = None,
    disabled: dict[str, str] | None = None,
    admins: list[int] | None = None,
    wait_up: bool = True,
    **telegram: Any,
) -> AsyncIterator[tuple[Bot, TelegramTransport]]:
    """The whole bot with only the Telegram transport, polling the fake."""
    sources = plugins if plugins is not None else {"tgtest": PLUGIN}
    directory = tmp_path / "plugins"
    directory.mkdir(exist_ok=True)
    for name, source in {**sources, **(disabled or {})}.items():
        (directory / f"{name}.py").write_text(textwrap.dedent(source))
    config = {
        "bot": {
            "database": str(tmp_path / "bot.db"),
            "plugin_dirs": [str(directory)],
            "alert_window": 0.05,
            "ask_timeout": 5,
            "admins": {"telegram": admins if admins is not None else [ALICE.id, DAVE.id]},
        },
        "transports": {
            "console": {"enabled": False},
            "telegram": telegram_section(fake, **telegram),
        },
        "plugins": {name: {} for name in sources} | {n: {"enabled": False} for n in disabled or {}},
    }
    bot = Bot(config_from_dict(config, base_dir=tmp_path))
    await bot.start()
    try:
        transport = bot.transports["telegram"]
        assert isinstance(transport, TelegramTransport)
        if wait_up:
            await wait_until(lambda: transport.state == "up", what="the transport to be up")
        yield bot, transport
    finally:
        await bot.stop()


async def say(
    fake: FakeTelegram, text: str, user: TgUser, chat_id: int | None = None, **kwargs: Any
) -> Call:
    """``user`` writes ``text``; returns the bot's next message in that chat."""
    if chat_id is None:
        await fake.inject_message(text, user=user)
        return await fake.wait_for_sent(user.id, **kwargs)
    await fake.inject_message(text, user=user, chat_id=chat_id, chat_type="supergroup")
    return await fake.wait_for_sent(chat_id, **kwargs)


def shown(call: Call) -> str:
    """The text as Telegram shows it (after parsing the HTML)."""
    return str(call.result["text"])


# --------------------------------------------------------------------------- end to end


async def test_commands_parse_arguments_like_the_console(
    tmp_path: Path, fake: FakeTelegram
) -> None:
    async with running_bot(tmp_path, fake):
        reply = await say(fake, '/echo "Bob Smith" 3 hello   world', ALICE)
        assert shown(reply) == "Bob Smith x3: hello   world"
        assert reply.parse_mode == "HTML"

        bad = await say(fake, "/echo bob many", ALICE)
        assert shown(bad).startswith("<n> must be a whole number, not 'many'")
        assert "Usage: !echo <who> <n> [note...]" in shown(bad)

        # The text prefix works on Telegram too, and so does a group's /cmd@thisbot.
        assert shown(await say(fake, "!echo x 1", BOB)) == "x x1: None"
        group = await say(fake, "/echo@fake_test_bot a 2 b", BOB, GROUP)
        assert shown(group) == "a x2: b"
        assert group.result["reply_to_message"]["from"]["id"] == BOB.id

        # Commands for another bot, and unknown commands in groups, are not ours to answer.
        await fake.inject_message("/echo@other_bot a 1", user=BOB, chat_id=GROUP, chat_type="group")
        await fake.inject_message("/nosuch 1", user=BOB, chat_id=GROUP, chat_type="group")
        after = await say(fake, "/whoami", BOB, GROUP)
        assert shown(after).startswith("You are Bob")
        unknown = await say(fake, "/nosuch", BOB)
        assert shown(unknown).startswith("Unknown command !nosuch.")
        started = await say(fake, "/start", BOB)
        assert shown(started).startswith("Commands (!help <command> for details):")


async def test_groups_admin_commands_and_mentions(tmp_path: Path, fake: FakeTelegram) -> None:
    async with running_bot(tmp_path, fake) as (bot, _):
        assert shown(await say(fake, "/points", BOB, GROUP)) == "Bob has 10 points"
        assert shown(await say(fake, "/points top", BOB, GROUP)) == "1. alice"
        # Telegram clients send a tapped /points_add as one word.
        refused = await say(fake, "/points_add @alice_tg 5", BOB, GROUP)
        assert shown(refused) == "This command is for admins only."
        added = await say(fake, "/points add @bob_tg 5", ALICE, GROUP)
        assert shown(added) == f"Gave 5 points to bob_tg (id {BOB.id})"
        stranger = await say(fake, "/points add @nobody_here 1", ALICE, GROUP)
        assert shown(stranger) == "Gave 1 points to nobody_here (id None)"
        audit = bot.store.audit_rows()
        assert [(r["user_id"], r["command"]) for r in audit][:2] == [
            (str(ALICE.id), "points add"),
            (str(ALICE.id), "points add"),
        ]


async def test_hostile_names_are_escaped(tmp_path: Path, fake: FakeTelegram) -> None:
    async with running_bot(tmp_path, fake):
        reply = await say(fake, "/whoami", EVIL)
        assert reply.parse_mode == "HTML"
        assert "&lt;b&gt;evil&lt;/b&gt; &amp; co" in reply.text
        assert shown(reply) == f"You are <b>evil</b> & co (telegram:{EVIL.id}), admin=False"


async def test_long_replies_are_split_at_4096(tmp_path: Path, fake: FakeTelegram) -> None:
    async with running_bot(tmp_path, fake):
        await fake.inject_message("/long 100", user=BOB)
        parts = [await fake.wait_for_sent(BOB.id) for _ in range(3)]
        texts = [shown(p) for p in parts]
        assert all(len(t) <= 4096 for t in texts)
        assert texts[0].startswith("line 0000 <&> ")
        assert "\n".join(texts).splitlines() == [
            f"line {i:04d} <&> " + "x" * 90 for i in range(100)
        ]
        assert parts[0].result.get("reply_to_message") is not None


async def test_button_confirmation_answer_and_expiry(tmp_path: Path, fake: FakeTelegram) -> None:
    async with running_bot(tmp_path, fake, confirm_timeout=0.5) as (_, transport):
        await fake.inject_message("/close 7", user=ALICE, chat_id=GROUP, chat_type="supergroup")
        question = await fake.wait_for_sent(GROUP)
        assert shown(question) == "Close game 7 <now>?"
        assert [b["text"] for b in question.buttons] == ["Yes", "No"]
        yes = next(b["callback_data"] for b in question.buttons if b["text"] == "Yes")

        # Someone else pressing is told off and decides nothing.
        intruder = await fake.inject_callback_query(question, yes, user=BOB)
        answer = await fake.wait_for_answer(intruder)
        assert answer.params["text"].startswith("Only the person who ran the command")
        assert answer.params.get("show_alert") in (True, "true", "True")

        pressed = await fake.inject_callback_query(question, yes, user=ALICE)
        assert (await fake.wait_for_answer(pressed)).params["text"] == "Confirmed."
        edit = await fake.wait_for_edit(GROUP)
        assert edit.message_id == question.message_id
        assert shown(edit) == "Close game 7 <now>?\n\n✅ Confirmed."
        assert "reply_markup" not in edit.result
        assert shown(await fake.wait_for_sent(GROUP)) == "Game 7 closed."

        await fake.inject_message("/close 8", user=ALICE, chat_id=GROUP, chat_type="supergroup")
        unanswered = await fake.wait_for_sent(GROUP)
        expired = await fake.wait_for_edit(GROUP, timeout=3)
        assert expired.message_id == unanswered.message_id
        assert shown(expired).endswith("⌛ Expired: no answer came, so nothing was done.")
        assert shown(await fake.wait_for_sent(GROUP)) == "Game 8 stays open."
        assert len(transport.confirmations) == 0
        # The buttons are gone, so a late press is impossible.
        with pytest.raises(ValueError, match="no button"):
            await fake.inject_callback_query(unanswered, yes, user=ALICE)


async def test_alert_reaches_a_subscribed_chat(tmp_path: Path, fake: FakeTelegram) -> None:
    async with running_bot(tmp_path, fake):
        on = await say(fake, "/news on", BOB, GROUP)
        assert shown(on) == "This chat now receives tgtest.news alerts."
        assert shown(await say(fake, "/shout the <doors> open", ALICE)) == "Published."
        alert = await fake.wait_for_sent(GROUP)
        assert shown(alert) == "THE <DOORS> OPEN"
        assert alert.parse_mode == "HTML"
        assert alert.result.get("reply_to_message") is None


async def test_ask_takes_the_next_message_and_private_replies_go_to_dm(
    tmp_path: Path, fake: FakeTelegram
) -> None:
    async with running_bot(tmp_path, fake):
        assert shown(await say(fake, "/code", BOB)) == "Send me the code."
        assert shown(await say(fake, "123 456", BOB)) == "Got 123 456"

        # Bob has a private chat with the bot now: his balance goes there, not to the group.
        await fake.inject_message("/balance", user=BOB, chat_id=GROUP, chat_type="supergroup")
        assert shown(await fake.wait_for_sent(BOB.id)) == "Your balance is 42."
        note = await fake.wait_for_sent(GROUP)
        assert shown(note) == "I sent you the answer in a private message."
        # Carol never opened one: she is told how, and the group never sees the balance.
        await fake.inject_message("/balance", user=CAROL, chat_id=GROUP, chat_type="supergroup")
        hint = await fake.wait_for_sent(GROUP)
        assert "open a chat with @fake_test_bot" in shown(hint)
        assert not any("42" in shown(c) for c in fake.sent if c.chat_id == GROUP)


async def test_menus_per_scope_synced_only_when_commands_change(
    tmp_path: Path, fake: FakeTelegram
) -> None:
    async with running_bot(tmp_path, fake, disabled={"extra": EXTRA}) as (bot, transport):
        await wait_until(lambda: fake.command_menu() is not None, what="the default menu")
        everyone = {c["command"]: c["description"] for c in fake.command_menu() or []}
        assert "wipe" not in everyone
        assert everyone["echo"] == "Repeat the arguments back."
        assert everyone["points"] == "Show a viewer's points. (also: top)"
        assert everyone["news"] == "Turn tgtest.news alerts on or off in this chat"
        admin_scope = {"type": "chat", "chat_id": ALICE.id}
        await wait_until(lambda: fake.command_menu(admin_scope) is not None, what="admin menu")
        admin = {c["command"]: c["description"] for c in fake.command_menu(admin_scope) or []}
        assert admin["wipe"] == "Wipe everything."
        assert admin["points"] == "Show a viewer's points. (also: add, top)"
        assert set(everyone) < set(admin)

        # Dave is an admin Telegram has no chat with yet: refused once, set when he writes.
        dave_scope = {"type": "chat", "chat_id": DAVE.id}
        assert (("chat", DAVE.id), "") not in fake.command_menus  # Telegram knows no such chat
        await fake.wait_for_call(lambda c: c.method == "setMyCommands" and not c.ok)
        refused = [c for c in fake.calls if c.method == "setMyCommands" and not c.ok]
        assert len(refused) == 1
        await asyncio.sleep(0.3)  # several menu checks: the refused scope is not retried
        assert len([c for c in fake.calls if c.method == "setMyCommands"]) == 3
        await say(fake, "/ping", DAVE)
        await wait_until(lambda: fake.command_menu(dave_scope) is not None, what="Dave's menu")

        # A plugin enabled at runtime changes the everyday menu only.
        calls = len([c for c in fake.calls if c.method == "setMyCommands"])
        await bot.plugins.enable("extra")
        await wait_until(
            lambda: any(c["command"] == "hello" for c in fake.command_menu() or []),
            what="the new command in the menu",
        )
        await asyncio.sleep(0.3)
        set_calls = [c for c in fake.calls if c.method == "setMyCommands"][calls:]
        assert len(set_calls) == 3  # default, Alice's and Dave's menus, once each
        assert transport.menus is not None

    # A restart with the same database and commands costs no menu call at all.
    before = len([c for c in fake.calls if c.method in ("setMyCommands", "deleteMyCommands")])
    async with running_bot(tmp_path, fake, plugins={"tgtest": PLUGIN, "extra": EXTRA}) as (
        _,
        transport,
    ):
        await say(fake, "/ping", BOB)
        await asyncio.sleep(0.3)
        assert transport.menus is not None and transport.menus.calls == 0
    after = len([c for c in fake.calls if c.method in ("setMyCommands", "deleteMyCommands")])
    assert after == before

    # Dave is no longer an admin: his menu is removed.
    async with running_bot(
        tmp_path, fake, plugins={"tgtest": PLUGIN, "extra": EXTRA}, admins=[ALICE.id]
    ):
        await wait_until(lambda: fake.command_menu(dave_scope) is None, what="Dave's menu gone")
        assert fake.command_menu(admin_scope) is not None


async def test_chat_administrators_are_admins_when_enabled(
    tmp_path: Path, fake: FakeTelegram
) -> None:
    fake.set_chat_admins(GROUP, [CAROL], creator=ALICE)
    async with running_bot(tmp_path, fake, chat_admins_are_admins=True) as (_, transport):
        assert shown(await say(fake, "/wipe", CAROL, GROUP)) == "Wiped."
        assert shown(await say(fake, "/wipe", BOB, GROUP)) == "This command is for admins only."
        # ...only in their own group.
        assert shown(await say(fake, "/wipe", CAROL)) == "This command is for admins only."
        lookups = [c for c in fake.calls if c.method == "getChatAdministrators"]
        assert len(lookups) == 1  # cached between the two group commands
        assert transport.chat_admins is not None and transport.chat_admins.lookups == 1
        scope = {"type": "all_chat_administrators"}
        await wait_until(lambda: fake.command_menu(scope) is not None, what="group admin menu")
        assert "wipe" in [c["command"] for c in fake.command_menu(scope) or []]

    async with running_bot(tmp_path, fake):
        assert shown(await say(fake, "/wipe", CAROL, GROUP)) == "This command is for admins only."


async def test_flood_wait_pauses_only_the_chat_that_hit_it(
    tmp_path: Path, fake: FakeTelegram
) -> None:
    async with running_bot(tmp_path, fake) as (_, transport):
        fake.rate_limit_next(1, retry_after=1)
        await fake.inject_message("/echo alice 1", user=ALICE)
        limited = await fake.wait_for_call(lambda c: c.status == 429, what="the 429")
        assert limited.chat_id == ALICE.id
        bob = await say(fake, "/echo bob 2", BOB)
        assert shown(bob) == "bob x2: None"
        assert bob.at - limited.at < 0.8, "another chat waited for Alice's flood limit"
        alice = await fake.wait_for_sent(ALICE.id, timeout=5)
        assert shown(alice) == "alice x1: None"
        assert alice.at - limited.at >= 1.0
        assert transport.limiter is not None and transport.limiter.flood_waits == 1
        assert transport.state == "up"


async def test_webhook_mode(tmp_path: Path, fake: FakeTelegram) -> None:
    port = _free_port()
    async with running_bot(
        tmp_path,
        fake,
        mode="webhook",
        webhook_url=f"http://127.0.0.1:{port}/tg-hook",
        webhook_port=port,
    ):
        assert fake.webhook["url"] == f"http://127.0.0.1:{port}/tg-hook"
        assert len(fake.webhook["secret_token"]) >= 32  # made up per run when not configured
        assert shown(await say(fake, "/echo hook 1", ALICE)) == "hook x1: None"
        assert fake.get_updates_calls == 0


async def test_unreachable_api_retries_without_blocking_start(
    tmp_path: Path, fake: FakeTelegram
) -> None:
    port = _free_port()
    down = FakeTelegram(port=port)
    url = f"http://127.0.0.1:{port}"
    began = time.monotonic()
    try:
        async with running_bot(
            tmp_path,
            fake,
            wait_up=False,
            base_url=f"{url}/bot",
            base_file_url=f"{url}/file/bot",
        ) as (bot, transport):
            assert time.monotonic() - began < 3
            await wait_until(lambda: transport.state == "reconnecting", what="reconnecting")
            assert "cannot connect" in transport.reason
            assert DEFAULT_TOKEN not in transport.reason
            assert bot.transports["telegram"].status()[0] == "reconnecting"
            # The rest of the bot carries on meanwhile.
            console = CollectingResponder()
            await bot.dispatcher.process(Message("console", "c", "u", "u", "!status", console))
            assert "transport telegram: reconnecting - cannot connect" in console.replies[0].text
            await down.start()
            down.add_chat({"id": GROUP, "type": "supergroup", "title": "Fans"})
            await wait_until(lambda: transport.state == "up", timeout=5, what="recovery")
            assert transport.reason == ""
            assert shown(await say(down, "/echo back 1", BOB)) == "back x1: None"
    finally:
        await down.stop()


async def test_status_follows_conflicts_and_lost_connections(
    tmp_path: Path, fake: FakeTelegram
) -> None:
    port = int(fake.url.rsplit(":", 1)[1])
    # Telegram's update ids go on growing across outages; a fresh fake must not restart them.
    again = FakeTelegram(port=port, first_update_id=200_000)
    try:
        # Recovery shows once a long poll returns: keep them short here.
        async with running_bot(tmp_path, fake, poll_timeout=1) as (_, transport):
            assert "transport telegram: up" in shown(await say(fake, "/status", BOB))
            # Someone else polls with this token: Telegram ends our long poll with 409.
            url = f"{fake.base_url}{fake.token}/getUpdates"
            async with httpx.AsyncClient() as http:
                assert (await http.post(url, data={"timeout": "0"})).status_code == 200
            await wait_until(lambda: transport.state == "reconnecting", what="the conflict")
            assert "409 Conflict" in transport.reason
            await wait_until(lambda: transport.state == "up", what="polling again")

            await fake.stop()
            await wait_until(lambda: transport.state == "reconnecting", what="the lost API")
            assert transport.reason.startswith("lost the Telegram Bot API")
            await again.start()
            await wait_until(lambda: transport.state == "up", what="the API back")
            assert shown(await say(again, "/echo again 1", BOB)) == "again x1: None"
    finally:
        await again.stop()


async def test_a_refused_token_fails_without_leaking_it(tmp_path: Path, fake: FakeTelegram) -> None:
    wrong = "123456789:AAWrongTokenWrongTokenWrongToken0000"
    async with running_bot(tmp_path, fake, wait_up=False, token=wrong) as (_, transport):
        await wait_until(lambda: transport.state == "failed", what="failed")
        assert "refused the bot token" in transport.reason
        assert wrong not in transport.reason and "Wrong" not in transport.reason
    async with running_bot(tmp_path, fake, wait_up=False, token="not a token") as (_, t2):
        assert t2.state == "failed"
        assert "does not look like a token" in t2.reason


# --------------------------------------------------------------------------- pieces


def test_config_rejects_webhook_without_url_and_bad_secrets() -> None:
    with pytest.raises(ConfigError, match="needs webhook_url"):
        config_from_dict({"transports": {"telegram": {"mode": "webhook"}}})
    with pytest.raises(ConfigError, match="webhook_secret: may only hold"):
        config_from_dict({"transports": {"telegram": {"webhook_secret": "no spaces"}}})
    with pytest.raises(ConfigError, match=r"transports\.telegram\.mode"):
        config_from_dict({"transports": {"telegram": {"mode": "push"}}})
    with pytest.raises(ConfigError) as err:
        config_from_dict({"transports": {"telegram": {"token": "1:secret", "typo": 1}}})
    assert "secret" not in str(err.value).replace("webhook_secret", "")


def test_slash_parsing() -> None:
    assert parse_slash("/Echo@Fake_Bot a  b\nc") == parse_slash("/echo@Fake_Bot a  b\nc")
    cmd = parse_slash("/echo@Fake_Bot a  b\nc")
    assert cmd is not None and (cmd.name, cmd.target, cmd.rest) == ("echo", "Fake_Bot", "a  b\nc")
    cmd = parse_slash("/points")
    assert cmd is not None and (cmd.name, cmd.target, cmd.rest) == ("points", None, "")
    assert parse_slash("/points/add") is None
    assert parse_slash("hello /points") is None
    assert parse_slash("/" + "x" * 33) is None


def _registry() -> Registry:
    registry = Registry()

    async def handler(ctx: Any) -> str:
        """Something."""
        return ""

    for name, perm in (
        ("points", Permission.EVERYONE),
        ("points add", Permission.ADMIN),
        ("points top", Permission.EVERYONE),
        ("link deepbot", Permission.EVERYONE),
        ("link rooms", Permission.EVERYONE),
        ("pos-alerts", Permission.EVERYONE),
        ("ünïcode", Permission.EVERYONE),
        ("shutdown", Permission.OWNER),
        ("payout", Permission.ADMIN),
    ):
        registry.add(command(name, permission=perm, help=f"Help of {name}")(handler))
    return registry


def test_command_names_and_bodies() -> None:
    registry = _registry()
    assert telegram_name("pos-alerts") == "pos_alerts"
    assert telegram_name("ünïcode") == "unicode"
    assert telegram_name("очки") is None
    assert command_body(registry, "unicode", "x") == "ünïcode x"
    assert command_body(registry, "pos_alerts", "on") == "pos-alerts on"
    assert command_body(registry, "points", "add bob 5") == "points add bob 5"
    assert command_body(registry, "points_add", "bob 5") == "points add bob 5"
    assert command_body(registry, "link_rooms", "") == "link rooms"
    assert command_body(registry, "link", "") == "link"
    assert command_body(registry, "nosuch", "x") is None
    assert command_body(registry, "no_such", "x") is None


def test_menus_by_permission() -> None:
    registry = _registry()
    everyday = {e.command: e.description for e in build_menu(registry, Permission.LINKED)}
    assert everyday == {
        "link": "Subcommands: deepbot, rooms",
        "points": "Help of points (also: top)",
        "pos_alerts": "Help of pos-alerts",
        "unicode": "Help of ünïcode",
    }
    admin = {e.command: e.description for e in build_menu(registry, Permission.ADMIN)}
    assert admin["points"] == "Help of points (also: add, top)"
    assert "payout" in admin and "shutdown" not in admin
    menus = wanted_menus(registry, admins=["7", "@name"], owners=["9"], chat_admins=False)
    assert set(menus) == {"default", "chat:7", "chat:9"}
    assert "shutdown" in [e.command for e in menus["chat:9"]]

    crowded = Registry()

    async def handler(ctx: Any) -> str:
        return ""

    for i in range(MAX_COMMANDS + 20):
        crowded.add(command(f"c{i:03d}", help="x" * 300)(handler))
    menu = build_menu(crowded, Permission.EVERYONE)
    assert len(menu) == MAX_COMMANDS
    assert all(len(e.description) == 256 for e in menu)


def test_split_counts_utf16_and_escaping() -> None:
    emoji = "😀" * 3000  # 6000 UTF-16 units in 3000 code points
    parts = split_text(emoji)
    assert len(parts) == 2 and "".join(parts) == emoji
    assert all(utf16_len(p) <= 4096 for p in parts)
    assert split_text("   ") == []
    assert to_html('<b>"x" & y</b>') == '&lt;b&gt;"x" &amp; y&lt;/b&gt;'
