"""The fake Telegram Bot API proven against the real python-telegram-bot.

The Application tests run the unmodified library (polling, a rate limiter, handlers); the raw
tests pin the Bot API behaviours a transport must cope with (long polling, conflicts, 401s).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import random
import socket
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from fake_telegram import FakeTelegram, TgError, TgUser, plain_text, simulator_from_args
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChatAdministrators,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, InvalidToken
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
)
from telegram.helpers import escape_markdown

ALICE = TgUser(5001, "Alice", "alice_tg")
BOB = TgUser(5002, "Bob", "bob_tg")
GROUP = -100_200_300

# AIORateLimiter reads RetryAfter.retry_after, which warns about its future type.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message and update.effective_user
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Yes", callback_data="yes")]])
    await update.effective_message.reply_text(
        f"Hello <b>{update.effective_user.first_name}</b>, args={context.args}",
        parse_mode=ParseMode.HTML,
        reply_markup=keyboard,
    )


async def admins(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_chat and update.effective_message
    found = await context.bot.get_chat_administrators(update.effective_chat.id)
    await update.effective_message.reply_text(
        " ".join(f"{m.status}:{m.user.username}" for m in found)
    )


async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer(f"you said {query.data}")
    await query.edit_message_text("Confirmed")


async def set_menus(app: Application) -> None:
    await app.bot.set_my_commands([BotCommand("start", "Say hello"), BotCommand("help", "Help")])
    await app.bot.set_my_commands(
        [BotCommand("admins", "List admins")], scope=BotCommandScopeChatAdministrators(GROUP)
    )
    await app.bot.set_my_commands(
        [BotCommand("start", "Hallo sagen")],
        scope=BotCommandScopeAllPrivateChats(),
        language_code="de",
    )


def _builder(fake: FakeTelegram) -> ApplicationBuilder:
    return (
        ApplicationBuilder()
        .token(fake.token)
        .base_url(fake.base_url)
        .base_file_url(fake.base_file_url)
        .rate_limiter(AIORateLimiter(max_retries=2))
    )


def _with_handlers(app: Application) -> Application:
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CommandHandler("admins", admins))
    app.add_handler(CallbackQueryHandler(pressed))
    return app


@contextlib.asynccontextmanager
async def polling(fake: FakeTelegram) -> AsyncIterator[Application]:
    """A real Application polling the fake, stopped and shut down cleanly afterwards."""
    fake.add_chat({"id": GROUP, "type": "supergroup", "title": "Fans"})
    app = _with_handlers(_builder(fake).build())
    async with app:
        await set_menus(app)
        await app.updater.start_polling(poll_interval=0, timeout=5)  # type: ignore[union-attr]
        await app.start()
        try:
            yield app
        finally:
            await app.updater.stop()  # type: ignore[union-attr]
            await app.stop()


async def test_command_reply_menus_and_button(fake_telegram: FakeTelegram) -> None:
    async with polling(fake_telegram):
        await fake_telegram.inject_message("/start now", user=ALICE)
        reply = await fake_telegram.wait_for_sent(ALICE.id)
        assert reply.text == "Hello <b>Alice</b>, args=['now']"
        assert reply.parse_mode == "HTML"
        assert reply.result["text"] == "Hello Alice, args=['now']"
        assert [b["callback_data"] for b in reply.buttons] == ["yes"]

        assert fake_telegram.command_menu() == [
            {"command": "start", "description": "Say hello"},
            {"command": "help", "description": "Help"},
        ]
        admin_scope = {"type": "chat_administrators", "chat_id": GROUP}
        assert [c["command"] for c in fake_telegram.command_menu(admin_scope) or []] == ["admins"]
        private_de = fake_telegram.command_menu({"type": "all_private_chats"}, "de")
        assert private_de == [{"command": "start", "description": "Hallo sagen"}]
        assert fake_telegram.command_menu({"type": "all_private_chats"}) is None

        query = await fake_telegram.inject_callback_query(reply, "yes", user=ALICE)
        answer = await fake_telegram.wait_for_answer(query)
        assert answer.ok and answer.params["text"] == "you said yes"
        edit = await fake_telegram.wait_for_edit(ALICE.id)
        assert (edit.message_id, edit.text) == (reply.message_id, "Confirmed")
        with pytest.raises(ValueError, match="no button"):
            await fake_telegram.inject_callback_query(reply, "no", user=ALICE)


async def test_group_command_addressed_to_the_bot(fake_telegram: FakeTelegram) -> None:
    fake_telegram.set_chat_admins(GROUP, [BOB], creator=ALICE)
    async with polling(fake_telegram):
        await fake_telegram.inject_message(
            "/admins@fake_test_bot", user=BOB, chat_id=GROUP, chat_type="supergroup"
        )
        reply = await fake_telegram.wait_for_sent(GROUP)
        assert reply.text == "creator:alice_tg administrator:bob_tg"
        assert reply.result["reply_to_message"]["from"]["id"] == BOB.id


async def test_flood_wait_is_honoured(fake_telegram: FakeTelegram) -> None:
    fake_telegram.rate_limit_next(1, retry_after=1)
    async with polling(fake_telegram):
        await fake_telegram.inject_message("/start", user=BOB)
        reply = await fake_telegram.wait_for_sent(BOB.id, timeout=8)
    refused, delivered = [c for c in fake_telegram.calls if c.method == "sendMessage"]
    assert (refused.status, delivered.status) == (429, 200)
    assert delivered is reply
    assert delivered.at - refused.at >= 1.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_webhook_mode_delivers_updates(fake_telegram: FakeTelegram) -> None:
    port = _free_port()
    app = _with_handlers(_builder(fake_telegram).build())
    async with app:
        await app.updater.start_webhook(  # type: ignore[union-attr]
            listen="127.0.0.1",
            port=port,
            url_path="hook",
            webhook_url=f"http://127.0.0.1:{port}/hook",
            secret_token="s3cret-Token",
        )
        await app.start()
        try:
            info = await app.bot.get_webhook_info()
            assert info.url == f"http://127.0.0.1:{port}/hook"
            assert fake_telegram.webhook["secret_token"] == "s3cret-Token"
            await fake_telegram.inject_message("/start hook", user=ALICE)
            reply = await fake_telegram.wait_for_sent(ALICE.id)
            assert "args=['hook']" in reply.text
        finally:
            await app.updater.stop()  # type: ignore[union-attr]
            await app.stop()


async def test_bad_input_gets_the_api_s_refusals(fake_telegram: FakeTelegram) -> None:
    await fake_telegram.inject_message("hi", user=ALICE)
    async with Bot(fake_telegram.token, base_url=fake_telegram.base_url) as bot:
        with pytest.raises(BadRequest, match=r"(?i)can't parse entities"):
            await bot.send_message(ALICE.id, "I <3 you", parse_mode=ParseMode.HTML)
        with pytest.raises(BadRequest, match=r"(?i)reserved"):
            await bot.send_message(ALICE.id, "1.5 points", parse_mode=ParseMode.MARKDOWN_V2)
        await bot.send_message(ALICE.id, r"1\.5 *points*", parse_mode=ParseMode.MARKDOWN_V2)
        with pytest.raises(BadRequest, match=r"(?i)chat not found"):
            await bot.send_message(424242, "hello?")
        with pytest.raises(BadRequest, match=r"(?i)too long"):
            await bot.send_message(ALICE.id, "x" * 4097)
        with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
            await bot.set_my_commands([BotCommand("Bad-Name", "nope")])
        with pytest.raises(BadRequest, match=r"(?i)query is too old"):
            await bot.answer_callback_query("12345")
        with pytest.raises(BadRequest, match=r"(?i)no administrators in the private chat"):
            await bot.get_chat_administrators(ALICE.id)
        scope = BotCommandScopeAllPrivateChats()
        await bot.set_my_commands([BotCommand("points", "Your points")], scope=scope)
        assert [c.command for c in await bot.get_my_commands(scope=scope)] == ["points"]
        assert await bot.get_my_commands() == ()
        await bot.delete_my_commands(scope=scope)
        assert fake_telegram.command_menu({"type": "all_private_chats"}) is None
        chat = await bot.get_chat(ALICE.id)
        assert (chat.id, chat.username) == (ALICE.id, "alice_tg")
    assert len(fake_telegram.sent) == 1

    with pytest.raises(InvalidToken):
        async with Bot("123456789:wrong", base_url=fake_telegram.base_url):
            pass


async def test_long_polling_offsets_and_conflicts(fake_telegram: FakeTelegram) -> None:
    url = f"{fake_telegram.base_url}{fake_telegram.token}"
    async with httpx.AsyncClient(timeout=10) as http:
        began = time.monotonic()
        waiting = asyncio.create_task(http.post(f"{url}/getUpdates", data={"timeout": "5"}))
        await asyncio.sleep(0.05)
        await fake_telegram.inject_message("/start", user=ALICE)
        first = (await waiting).json()["result"]
        assert time.monotonic() - began < 2
        assert first[0]["message"]["entities"] == [
            {"type": "bot_command", "offset": 0, "length": 6}
        ]

        await fake_telegram.inject_message("second", user=ALICE)
        await fake_telegram.inject_message("third", user=BOB)
        ids = [u["update_id"] for u in (await http.get(f"{url}/getUpdates")).json()["result"]]
        assert ids == [first[0]["update_id"] + i for i in range(3)]
        confirmed = await http.post(f"{url}/getUpdates", json={"offset": ids[1] + 1})
        assert [u["message"]["text"] for u in confirmed.json()["result"]] == ["third"]
        last = await http.post(f"{url}/getUpdates", data={"offset": "-1"})
        assert [u["update_id"] for u in last.json()["result"]] == [ids[2]]

        older = asyncio.create_task(
            http.post(f"{url}/getUpdates", data={"offset": ids[2] + 1, "timeout": 5})
        )
        await asyncio.sleep(0.05)
        newer = asyncio.create_task(
            http.post(f"{url}/getUpdates", data={"offset": ids[2] + 1, "timeout": 0})
        )
        assert (await older).status_code == 409
        assert (await newer).json() == {"ok": True, "result": []}

        await http.post(f"{url}/setWebhook", data={"url": "http://127.0.0.1:9/never"})
        conflict = await http.post(f"{url}/getUpdates")
        assert conflict.status_code == 409 and "webhook is active" in conflict.json()["description"]
        await http.post(f"{url}/deleteWebhook")

        wrong = await http.get(f"{fake_telegram.base_url}123:nope/getMe")
        assert (wrong.status_code, wrong.json()) == (
            401,
            {"ok": False, "error_code": 401, "description": "Unauthorized"},
        )
        unknown = await http.get(f"{url}/noSuchMethod")
        assert unknown.status_code == 404


async def test_simulator_from_args_uses_the_given_token() -> None:
    fake = simulator_from_args(["--port", "0", "--token", "42:abc", "--bot-username", "x_bot"])
    assert isinstance(fake, FakeTelegram)
    async with fake, Bot("42:abc", base_url=fake.base_url) as bot:
        assert (bot.id, bot.username) == (42, "x_bot")


def test_escaped_text_always_passes_the_markup_checks() -> None:
    """The checkers must never refuse what PTB's own escaping produces, or tests would lie."""
    rnd = random.Random(7)
    alphabet = "_*[]()~`>#+-=|{}.!\\<>&\"' abcé😀\n"
    for _ in range(2000):
        text = "".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 30)))
        assert plain_text(escape_markdown(text, version=2), "MarkdownV2") == text
        assert plain_text(html.escape(text), "HTML") == text
    assert plain_text(r"*bold* ||spoiler|| `a\`b` [x](http://e.com/\))", "MarkdownV2") == (
        "bold spoiler a`b x"
    )
    for raw in ("a.b", "*open", "[x]", "1-2"):
        with pytest.raises(TgError, match="can't parse entities"):
            plain_text(raw, "MarkdownV2")
    for raw in ("<b>bold", "a < b", "<br>", "<b><i>x</b></i>"):
        with pytest.raises(TgError, match="can't parse entities"):
            plain_text(raw, "HTML")
