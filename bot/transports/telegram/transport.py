"""The Telegram transport: python-telegram-bot's Application, driven inside the bot's loop.

PTB's ``run_polling`` owns the event loop and installs signal handlers, which would take the
console and Discord down with it; so the Application is initialised, its updater started
(polling or webhook) and stopped by hand. Connecting happens in a background task: an
unreachable Bot API leaves the transport "reconnecting" with the reason, retried with
:func:`~bot.backoff.backoff_delays`, and never blocks or breaks the other transports.

Every update is handled in its own task, chained per chat so that a user's messages reach the
dispatcher in the order they were sent (a command, then the answer to its question) while a
slow chat never holds up the others.

Groups: with Telegram's privacy mode on (the default for bots), the bot only sees commands and
replies to its own messages, so the answer to a question (``ctx.ask``) must be sent as a reply
to the question there. Replies marked private (links, balances) go to the user's private chat
with the bot; errors stay in the chat where the command was typed.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections import OrderedDict
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from telegram import (
    BotCommand,
    BotCommandScope,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    MessageEntity,
    ReplyParameters,
    Update,
)
from telegram import Message as TgMessage
from telegram.constants import ChatType, ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    TelegramError,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)
from telegram.request import HTTPXRequest

from ...backoff import backoff_delays
from ...commands import UserRef
from ...messages import Message, Reply
from ..base import Transport
from .admins import ChatAdmins
from .commands import command_body, parse_slash, wanted_menus
from .confirm import NO, YES, Confirmations, Outcome, callback_data
from .menu import MenuSync
from .ratelimit import ChatFloodLimiter
from .text import MAX_LENGTH, split_text, to_html, utf16_len

if TYPE_CHECKING:
    from ...app import Bot
    from ...config import TelegramConfig

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]+$")
_REFUSED = "Telegram refused the bot token (Unauthorized); check it with BotFather"
_ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
#: usernames remembered to resolve "@name" arguments to user ids
_KNOWN_USERS = 10_000


class _TrackedRequest(HTTPXRequest):
    """The getUpdates connection, reporting whether the Bot API answers.

    PTB's polling loop retries on its own after a network error; this is how the transport
    learns that it lost the API and that it is back, for ``status``.
    """

    def __init__(self, transport: TelegramTransport, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._transport = transport

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        try:
            code, body = await super().do_request(*args, **kwargs)
        except NetworkError as exc:
            self._transport._lost(exc)
            raise
        if code == 200:
            self._transport._reached()
        elif code == 401:
            # PTB's polling loop gives up on a revoked token without telling anyone.
            self._transport._fail(_REFUSED)
        return code, body


class _Responder:
    """Answers one incoming message or button press in its chat."""

    def __init__(
        self,
        transport: TelegramTransport,
        chat_id: int,
        user_id: int,
        message_id: int | None,
        private_chat: bool,
    ) -> None:
        self.transport = transport
        self.chat_id = chat_id
        self.user_id = user_id
        self.message_id = message_id
        self.private_chat = private_chat

    async def send(self, reply: Reply) -> None:
        t = self.transport
        if reply.private and not reply.error and not self.private_chat:
            # Links and balances go to the user's private chat, never into the group.
            if await t._deliver(self.user_id, reply.text):
                await t._deliver(
                    self.chat_id, "I sent you the answer in a private message.", self.message_id
                )
            else:
                await t._deliver(
                    self.chat_id,
                    f"I cannot message you privately yet: open a chat with @{t.username}, "
                    "press Start, then try again.",
                    self.message_id,
                )
            return
        await t._deliver(self.chat_id, reply.text, self.message_id)

    async def confirm(self, question: str, timeout: float) -> bool | None:
        return await self.transport._confirm(
            self.chat_id, str(self.user_id), self.message_id, question, timeout
        )


class TelegramTransport(Transport):
    """Telegram through python-telegram-bot, polling by default or serving a webhook."""

    platform = "telegram"
    max_length = 4096

    def __init__(self) -> None:
        super().__init__()
        self.bot: Bot | None = None
        self.app: Application[Any, Any, Any, Any, Any, Any] | None = None
        self.username = ""
        self.bot_id: int | None = None
        self.limiter: ChatFloodLimiter | None = None
        self.menus: MenuSync | None = None
        self.chat_admins: ChatAdmins | None = None
        self.confirmations = Confirmations()
        self._cfg: TelegramConfig | None = None
        self._token = ""
        self._runner: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._chat_tails: dict[int, asyncio.Task[None]] = {}
        self._usernames: OrderedDict[str, str] = OrderedDict()
        self._connected = False

    # ------------------------------------------------------------------ life cycle

    @property
    def cfg(self) -> TelegramConfig:
        assert self._cfg is not None, "the transport has not been started"
        return self._cfg

    async def start(self, bot: Bot) -> None:
        self.bot = bot
        self._cfg = cfg = bot.settings.transports.telegram
        self._token = cfg.token.get_secret_value().strip() if cfg.token else ""
        if not self._token:
            self._fail("no bot token configured (transports.telegram.token)")
            return
        if not _TOKEN.match(self._token):
            self._fail("transports.telegram.token does not look like a token from @BotFather")
            return
        try:
            self.app = self._build()
        except Exception as exc:
            self._fail(f"cannot set up python-telegram-bot: {self._describe(exc)}")
            return
        self.chat_admins = ChatAdmins(self._fetch_admins, cfg.chat_admins_ttl)
        self.state, self.reason = "connecting", ""
        self._runner = asyncio.create_task(self._run(), name="telegram:run")

    def _build(self) -> Application[Any, Any, Any, Any, Any, Any]:
        cfg = self.cfg
        t = cfg.request_timeout
        timeouts = {"read_timeout": t, "write_timeout": t, "connect_timeout": t, "pool_timeout": t}
        self.limiter = ChatFloodLimiter(
            per_second=cfg.rate_per_second,
            group_per_minute=cfg.rate_group_per_minute,
            retries=cfg.flood_retries,
        )
        builder = (
            ApplicationBuilder()
            .token(self._token)
            .request(HTTPXRequest(connection_pool_size=64, **timeouts))
            .get_updates_request(_TrackedRequest(self, connection_pool_size=2, **timeouts))
            .rate_limiter(self.limiter)
        )
        if cfg.base_url:
            builder = builder.base_url(cfg.base_url)
        if cfg.base_file_url:
            builder = builder.base_file_url(cfg.base_file_url)
        app = builder.build()
        app.add_handler(MessageHandler(filters.TEXT & filters.UpdateType.MESSAGE, self._on_message))
        app.add_handler(CallbackQueryHandler(self._on_button))
        app.add_error_handler(self._on_error)
        return app

    async def _run(self) -> None:
        cfg = self.cfg
        delays = backoff_delays(cfg.reconnect_min, cfg.reconnect_max)
        while True:
            try:
                await self._connect()
                break
            except asyncio.CancelledError:
                raise
            except InvalidToken:
                # Its message quotes the token; ours must not.
                self._fail(_REFUSED)
                return
            except Exception as exc:
                delay = next(delays)
                self.state = "reconnecting"
                self.reason = f"cannot connect: {self._describe(exc)}; retrying in {delay:.1f} s"
                log.warning("telegram: %s", self.reason)
                await self._stop_updater()
                await asyncio.sleep(delay)
        self._connected = True
        self.state, self.reason = "up", ""
        log.info("telegram: connected as @%s (%s)", self.username, cfg.mode)
        await self._keep_menus()

    async def _connect(self) -> None:
        app, cfg = self.app, self.cfg
        assert app is not None and app.updater is not None
        await app.initialize()  # getMe: proves the token and the address
        self.username = app.bot.username or ""
        self.bot_id = app.bot.id
        assert self.bot is not None
        self.menus = MenuSync(self.bot.store, app.bot.id, self._set_menu, self._delete_menu)
        if cfg.mode == "webhook":
            assert cfg.webhook_url
            secret = (
                cfg.webhook_secret.get_secret_value()
                if cfg.webhook_secret
                else secrets.token_urlsafe(32)
            )
            await app.updater.start_webhook(
                listen=cfg.webhook_listen,
                port=cfg.webhook_port,
                url_path=cfg.webhook_path or urlparse(cfg.webhook_url).path or "/telegram",
                webhook_url=cfg.webhook_url,
                secret_token=secret,
                allowed_updates=_ALLOWED_UPDATES,
                bootstrap_retries=0,
            )
        else:
            await app.updater.start_polling(
                poll_interval=0,
                timeout=int(cfg.poll_timeout),
                bootstrap_retries=0,
                allowed_updates=_ALLOWED_UPDATES,
                error_callback=self._polling_error,
            )
        await app.start()

    async def _keep_menus(self) -> None:
        """Sync the menus now, then whenever the running commands change (plugin reloads)."""
        while True:
            try:
                await self.sync_menus()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("telegram: cannot update the command menu: %s", self._describe(exc))
            await asyncio.sleep(self.cfg.menu_check_interval)

    async def sync_menus(self) -> list[str]:
        """Update the command menus that differ from the running commands; returns the scopes."""
        if self.menus is None or self.bot is None:
            return []
        settings = self.bot.settings.bot
        menus = wanted_menus(
            self.bot.registry,
            admins=settings.admins.telegram,
            owners=settings.owners.telegram,
            chat_admins=self.cfg.chat_admins_are_admins,
        )
        changed = await self.menus.sync(menus)
        if changed:
            log.info("telegram: command menu updated for %s", ", ".join(changed))
        return changed

    async def _set_menu(self, commands: list[BotCommand], scope: BotCommandScope) -> None:
        assert self.app is not None
        await self.app.bot.set_my_commands(commands, scope=scope)

    async def _delete_menu(self, scope: BotCommandScope) -> None:
        assert self.app is not None
        await self.app.bot.delete_my_commands(scope=scope)

    async def stop(self) -> None:
        self.state = "stopped"
        self._connected = False
        self.confirmations.abandon()
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
            self._runner = None
        tasks = [t for t in self._tasks if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        app, self.app = self.app, None
        if app is None:
            return
        await self._stop_updater(app)
        try:
            if app.running:
                await app.stop()
            await app.shutdown()
            await app.bot.shutdown()  # closes the connections even if initialize() never finished
        except Exception:
            log.exception("telegram: error while shutting down")

    async def _stop_updater(
        self, app: Application[Any, Any, Any, Any, Any, Any] | None = None
    ) -> None:
        app = app or self.app
        if app is not None and app.updater is not None and app.updater.running:
            try:
                await app.updater.stop()
            except Exception:
                log.exception("telegram: error while stopping the updater")

    # ------------------------------------------------------------------ connection state

    def _fail(self, reason: str) -> None:
        self.state, self.reason = "failed", reason
        log.error("telegram: %s", reason)

    def _describe(self, exc: BaseException) -> str:
        """A one-line reason for ``status`` and logs, never containing the token."""
        if isinstance(exc, InvalidToken):
            return "Telegram refused the bot token (Unauthorized)"
        text = str(exc) or type(exc).__name__
        if self._token:
            text = text.replace(self._token, "***")
        return text if isinstance(exc, TelegramError) else f"{type(exc).__name__}: {text}"

    def _lost(self, exc: BaseException) -> None:
        if self._connected and self.state in ("up", "reconnecting"):
            self.state = "reconnecting"
            self.reason = f"lost the Telegram Bot API: {self._describe(exc)}"
            log.warning("telegram: %s", self.reason)

    def _reached(self) -> None:
        if self._connected and self.state == "reconnecting":
            log.info("telegram: the Bot API answers again")
            self.state, self.reason = "up", ""

    def _polling_error(self, exc: TelegramError) -> None:
        if not self._connected:
            return
        if isinstance(exc, Conflict):
            self.state = "reconnecting"
            self.reason = "another program is reading this bot's updates (409 Conflict)"
            log.warning("telegram: %s", self.reason)
        elif isinstance(exc, NetworkError):
            self._lost(exc)
        else:
            log.warning("telegram: polling failed: %s", self._describe(exc))

    # ------------------------------------------------------------------ incoming updates

    def _spawn(self, chat_id: int, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` after the chat's earlier updates, without holding up other chats."""
        before = self._chat_tails.get(chat_id)

        async def in_order() -> None:
            try:
                if before is not None:
                    await asyncio.wait({before})
            except asyncio.CancelledError:
                work.close()  # stopping before its turn came
                raise
            try:
                await work
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("telegram: handling an update of chat %s failed", chat_id)

        task = asyncio.create_task(in_order(), name=f"telegram:chat:{chat_id}")
        self._chat_tails[chat_id] = task
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if self._chat_tails.get(chat_id) is t:
                del self._chat_tails[chat_id]

        task.add_done_callback(done)

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name="telegram:background")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        msg = update.message
        if msg is None or msg.text is None:
            return
        if msg.from_user is not None and msg.from_user.is_bot and msg.sender_chat is None:
            return  # other bots' messages never run commands (no bot-to-bot loops)
        self._spawn(msg.chat.id, self._handle_message(msg))

    async def _handle_message(self, msg: TgMessage) -> None:
        bot = self.bot
        if bot is None:
            return
        chat, user = msg.chat, msg.from_user
        private = chat.type == ChatType.PRIVATE
        text = msg.text or ""
        prefix = bot.settings.bot.prefix
        slash = parse_slash(text)
        if slash is not None:
            if slash.target is not None and slash.target.lower() != self.username.lower():
                return  # /cmd@another_bot
            body = command_body(bot.registry, slash.name, slash.rest)
            if body is None and slash.name == "start":
                body = "help"  # what every Telegram client sends first
            if body is None:
                if not private and slash.target is None:
                    return  # probably another bot's command in this group
                body = f"{slash.name} {slash.rest}".strip()
            text = prefix + body
        is_command = text.lstrip().startswith(prefix)

        if msg.sender_chat is not None:
            # Anonymous group admins and linked channels write as a chat, not as a user.
            user_id, name = msg.sender_chat.id, msg.sender_chat.title or "anonymous"
            platform_admin = self.cfg.chat_admins_are_admins and msg.sender_chat.id == chat.id
        elif user is not None:
            user_id, name = user.id, user.full_name
            self._remember(user.username, user.id)
            platform_admin = False
            if (
                is_command
                and self.cfg.chat_admins_are_admins
                and chat.type in (ChatType.GROUP, ChatType.SUPERGROUP)
                and self.chat_admins is not None
            ):
                platform_admin = await self.chat_admins.is_admin(chat.id, str(user.id))
        else:
            return

        if private and self.menus is not None and self.menus.retry(f"chat:{user_id}"):
            # An admin whose menu Telegram refused has opened a chat with the bot: try again.
            self._background(self._sync_quietly())

        message = Message(
            platform=self.platform,
            chat_id=str(chat.id),
            user_id=str(user_id),
            user_name=name,
            text=text,
            responder=_Responder(self, chat.id, user_id, msg.message_id, private),
            chat_kind="private"
            if private
            else ("channel" if chat.type == ChatType.CHANNEL else "group"),
            platform_admin=platform_admin,
            mentions=self._mentions(msg),
            extra={
                "message_id": msg.message_id,
                "username": user.username if user else None,
                "chat_title": chat.title,
            },
            # a chat's message ids are unique in it, and the same when Telegram resends
            id=f"telegram:{chat.id}:{msg.message_id}",
        )
        bot.dispatcher.submit(message)

    async def _sync_quietly(self) -> None:
        try:
            await self.sync_menus()
        except Exception as exc:
            log.warning("telegram: cannot update the command menu: %s", self._describe(exc))

    def _remember(self, username: str | None, user_id: int) -> None:
        if not username:
            return
        key = username.lower()
        self._usernames[key] = str(user_id)
        self._usernames.move_to_end(key)
        while len(self._usernames) > _KNOWN_USERS:
            self._usernames.popitem(last=False)

    def _mentions(self, msg: TgMessage) -> dict[str, UserRef]:
        """Users named in the text: ``@username`` (id if we have seen them) and text mentions."""
        found: dict[str, UserRef] = {}
        kinds = [MessageEntity.MENTION, MessageEntity.TEXT_MENTION]
        for entity, typed in msg.parse_entities(kinds).items():  # type: ignore[arg-type]
            if entity.type == MessageEntity.TEXT_MENTION and entity.user is not None:
                found[typed] = UserRef(self.platform, str(entity.user.id), typed)
            elif entity.type == MessageEntity.MENTION:
                name = typed.lstrip("@")
                found[typed] = UserRef(self.platform, self._usernames.get(name.lower()), name)
        return found

    async def _fetch_admins(self, chat_id: int) -> set[str]:
        assert self.app is not None
        members = await self.app.bot.get_chat_administrators(chat_id)
        return {str(m.user.id) for m in members}

    async def _on_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        if query is None:
            return
        chat_id = query.message.chat.id if query.message is not None else 0
        self._spawn(chat_id, self._handle_button(update))

    async def _handle_button(self, update: Update) -> None:
        query = update.callback_query
        assert query is not None
        outcome, answer = self.confirmations.press(query.data or "", str(query.from_user.id))
        notes = {
            Outcome.ANSWERED: "Confirmed." if answer else "Cancelled.",
            Outcome.EXPIRED: "This question has expired; nothing was done.",
            Outcome.NOT_YOURS: "Only the person who ran the command can answer this.",
            Outcome.INVALID: None,
        }
        try:
            await query.answer(notes[outcome], show_alert=outcome is Outcome.NOT_YOURS)
        except TelegramError as exc:
            log.warning("telegram: cannot answer a button press: %s", self._describe(exc))

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("telegram: an update handler failed", exc_info=context.error)

    # ------------------------------------------------------------------ outgoing

    async def send(self, chat_id: str, text: str) -> None:
        """Alerts and other unsolicited text; a failure is logged, never raised into the router."""
        target: int | str = int(chat_id) if chat_id.lstrip("-").isdigit() else chat_id
        if not await self._deliver(target, text):
            log.warning("telegram: message to chat %s not delivered", chat_id)

    async def _deliver(self, chat_id: int | str, text: str, reply_to: int | None = None) -> bool:
        """Send ``text`` (split and escaped); False if Telegram would not take it."""
        try:
            await self._send_parts(chat_id, text, reply_to)
            return True
        except (Forbidden, BadRequest) as exc:
            log.warning("telegram: chat %s refused a message: %s", chat_id, exc)
        except TelegramError as exc:
            log.warning("telegram: sending to chat %s failed: %s", chat_id, self._describe(exc))
        except RuntimeError as exc:  # the connection pool is closed: we are stopping
            log.warning("telegram: not sending to chat %s: %s", chat_id, exc)
        return False

    async def _send_parts(
        self,
        chat_id: int | str,
        text: str,
        reply_to: int | None = None,
        markup: InlineKeyboardMarkup | None = None,
    ) -> TgMessage | None:
        """Send every part; the keyboard goes on the last one. Returns the last message sent."""
        app = self.app
        if app is None or not self._connected:
            raise NetworkError("the Telegram transport is not connected")
        parts = split_text(text)
        last: TgMessage | None = None
        for i, part in enumerate(parts):
            kwargs: dict[str, Any] = {"parse_mode": ParseMode.HTML}
            if i == 0 and reply_to is not None:
                kwargs["reply_parameters"] = ReplyParameters(
                    reply_to, allow_sending_without_reply=True
                )
            if i == len(parts) - 1 and markup is not None:
                kwargs["reply_markup"] = markup
            try:
                last = await app.bot.send_message(chat_id, to_html(part), **kwargs)
            except ChatMigrated as exc:
                # A group became a supergroup: its id changed, the conversation goes on there.
                log.warning("telegram: chat %s is now %s", chat_id, exc.new_chat_id)
                chat_id = exc.new_chat_id
                last = await app.bot.send_message(chat_id, to_html(part), **kwargs)
        return last

    async def _confirm(
        self, chat_id: int, user_id: str, reply_to: int | None, question: str, timeout: float
    ) -> bool:
        """Ask with Yes/No buttons; False if declined, unanswered in time, or not deliverable."""
        token, answered = self.confirmations.open(user_id)
        keyboard = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton("Yes", callback_data=callback_data(token, YES)),
                    InlineKeyboardButton("No", callback_data=callback_data(token, NO)),
                ]
            ]
        )
        try:
            sent = await self._send_parts(chat_id, question, reply_to, keyboard)
        except (TelegramError, RuntimeError) as exc:
            self.confirmations.close(token)
            log.warning("telegram: cannot ask for confirmation: %s", self._describe(exc))
            return False
        try:
            answer = await asyncio.wait_for(answered, min(timeout, self.cfg.confirm_timeout))
            outcome = "✅ Confirmed." if answer else "❌ Cancelled."
        except TimeoutError:
            answer, outcome = False, "⌛ Expired: no answer came, so nothing was done."
        finally:
            self.confirmations.close(token)
        if sent is not None:
            await self._settle(sent, question, outcome)
        return answer

    async def _settle(self, sent: TgMessage, question: str, outcome: str) -> None:
        """Replace the buttons with the outcome, so nobody presses a stale question."""
        app = self.app
        if app is None:
            return  # stopping: the question goes unanswered
        tail = split_text(question)[-1] if question.strip() else ""
        if utf16_len(tail) + utf16_len(outcome) + 2 > MAX_LENGTH:
            tail = split_text(tail, MAX_LENGTH - 200)[0] + "…"
        try:
            await app.bot.edit_message_text(
                to_html(f"{tail}\n\n{outcome}".strip()),
                chat_id=sent.chat.id,
                message_id=sent.message_id,
                parse_mode=ParseMode.HTML,
            )
        except (TelegramError, RuntimeError) as exc:
            log.warning("telegram: cannot close the confirmation: %s", self._describe(exc))
