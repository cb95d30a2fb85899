"""A local fake of the Telegram Bot API, so tests can run the real python-telegram-bot.

Why a fake and not mocks: the Telegram transport's bugs live in how it drives the real
library (command entities, scopes of the command menu, callback answers, flood waits), so the
library runs unmodified and only its base URL points at 127.0.0.1.

Pointing python-telegram-bot at it::

    ApplicationBuilder().token(fake.token)
        .base_url(fake.base_url)            # http://127.0.0.1:PORT/bot  (the token is appended)
        .base_file_url(fake.base_file_url)  # http://127.0.0.1:PORT/file/bot

which is what the transport's ``base_url`` / ``base_file_url`` config keys feed.

What is faithful: ``/bot<token>/<method>`` over GET or POST with query, form, multipart or JSON
parameters (method names are case-insensitive); ``{"ok": ..., "result" | "error_code",
"description", "parameters"}`` envelopes with the real status codes and descriptions (401
Unauthorized for a wrong token, 404 for an unknown method, 400 "Bad Request: ..." for bad
input, 409 Conflict for a second poller or polling while a webhook is set, 429 with
``parameters.retry_after``); long polling that honours ``timeout``, ``offset`` (including
negative offsets), ``limit`` and ``allowed_updates``; increasing ``update_id``; webhook
delivery with ``X-Telegram-Bot-Api-Secret-Token``; ``bot_command`` entities in UTF-16 offsets;
command menus per scope and language; HTML and MarkdownV2 checked well enough to catch
unescaped user text. Not modelled: files, inline mode, payments, automatic flood limits (use
:meth:`FakeTelegram.rate_limit_next`), exact entity offsets in returned messages.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import itertools
import json
import logging
import re
import secrets
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from bot.simulation import Simulator

log = logging.getLogger(__name__)

DEFAULT_TOKEN = "123456789:AAFakeTelegramTokenForTestsOnly_0123456"
_SAFE_TIMEOUT = 5.0
_MAX_TEXT = 4096


@dataclass
class TgUser:
    id: int
    first_name: str
    username: str | None = None
    last_name: str | None = None
    is_bot: bool = False
    language_code: str | None = "en"

    def to_api(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        return data


@dataclass(frozen=True)
class Call:
    """One API call the bot made (except getUpdates), with its decoded parameters and outcome."""

    seq: int
    method: str
    params: dict[str, Any]
    status: int
    result: Any = None
    at: float = field(default_factory=time.monotonic)

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def chat_id(self) -> int | str | None:
        if isinstance(self.result, dict) and "chat" in self.result:
            return self.result["chat"]["id"]
        value = self.params.get("chat_id")
        return _as_int(value) if isinstance(value, int | str) and _is_int(value) else value

    @property
    def message_id(self) -> int | None:
        if isinstance(self.result, dict) and "message_id" in self.result:
            return self.result["message_id"]
        value = self.params.get("message_id")
        return _as_int(value) if value is not None and _is_int(value) else None

    @property
    def text(self) -> str:
        """The text as the bot sent it (markup included, before Telegram parses it)."""
        return str(self.params.get("text") or "")

    @property
    def parse_mode(self) -> str | None:
        return self.params.get("parse_mode") or None

    @property
    def reply_markup(self) -> dict[str, Any] | None:
        markup = self.params.get("reply_markup")
        return _loads(markup) if isinstance(markup, str) else markup

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """The inline keyboard's buttons, flattened row by row."""
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        return [button for row in rows for button in row]


class TgError(Exception):
    """A refusal in the Bot API's envelope; ``description`` is the API's own wording."""

    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.code, self.description, self.parameters = code, description, parameters

    def response(self) -> web.Response:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.code,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return web.json_response(body, status=self.code)


def _bad(description: str) -> TgError:
    return TgError(400, f"Bad Request: {description}")


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()) is not None


def _as_int(value: Any) -> int:
    return int(value) if isinstance(value, int) else int(str(value).strip())


def _loads(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return None


class FakeTelegram(Simulator):
    """The Bot API for one bot, on 127.0.0.1.

    Test hooks: ``inject_message``, ``inject_callback_query``, ``rate_limit_next``,
    ``set_chat_admins``; read back ``calls``, ``sent``, ``command_menu`` / ``command_menus``,
    ``webhook``; wait with ``wait_for_sent``, ``wait_for_edit``, ``wait_for_answer`` or
    ``wait_for_call``.
    """

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        host: str = "127.0.0.1",
        port: int = 0,
        bot_username: str = "fake_test_bot",
        bot_name: str = "Fake Bot",
        first_update_id: int = 100_000,
        max_poll_timeout: float = 50.0,
        webhook_retry_delay: float = 0.5,
        allow_http_webhooks: bool = True,
    ) -> None:
        self.token = token
        self.host = host
        self._port = port
        self.bot_user = TgUser(
            int(token.split(":", 1)[0]), bot_name, bot_username, is_bot=True, language_code=None
        )
        self.max_poll_timeout = max_poll_timeout
        self.webhook_retry_delay = webhook_retry_delay
        self.allow_http_webhooks = allow_http_webhooks

        self.calls: list[Call] = []
        self.get_updates_calls = 0
        self.errors: list[str] = []  # bugs in the fake itself; the fixtures assert it is empty
        self.webhook: dict[str, Any] = {}  # url, secret_token, allowed_updates, last_error_*
        self.command_menus: dict[tuple[tuple[Any, ...], str], list[dict[str, Any]]] = {}

        self._updates: list[dict[str, Any]] = []
        self._next_update_id = first_update_id
        self._allowed_updates: list[str] = []
        self._chats: dict[int, dict[str, Any]] = {}
        self._members: dict[int, dict[int, TgUser]] = {}
        self._admins: dict[int, tuple[TgUser | None, list[TgUser]]] = {}
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._message_ids: dict[int, itertools.count[int]] = {}
        self._callbacks: dict[str, bool] = {}  # id -> answered
        self._rate_limits: list[tuple[str, int]] = []
        self._seq = itertools.count(1)
        self._taken: set[int] = set()
        self._changed = asyncio.Condition()
        self._poll_generation = 0
        #: long polls ended by another poller's getUpdates (two bots on one token)
        self.poll_conflicts = 0
        self._closing = False

        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._delivery: asyncio.Task[None] | None = None

    # ---------------------------------------------------------------- lifecycle and addresses

    @property
    def base_url(self) -> str:
        """For ``ApplicationBuilder().base_url`` (the library appends the token)."""
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.url}/file/bot"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", "/file/bot{token}/{path:.*}", self._file)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._port))
        sock.listen(128)
        sock.setblocking(False)
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        self.url = f"http://{self.host}:{self._port}"
        self._http = aiohttp.ClientSession()
        self._closing = False

    async def stop(self) -> None:
        self._closing = True
        await self._notify()  # releases long polls at once
        if self._delivery is not None:
            self._delivery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._delivery
            self._delivery = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    # ---------------------------------------------------------------- test-side API

    def rate_limit_next(
        self, count: int = 1, *, retry_after: int = 1, method: str = "sendMessage"
    ) -> None:
        """Answer the next ``count`` calls of ``method`` with 429 and ``retry_after`` seconds."""
        self._rate_limits.extend([(method.lower(), retry_after)] * count)

    def add_chat(self, chat: Mapping[str, Any]) -> None:
        """Make a chat known (as if the bot had been added to it) without a message."""
        self._chats[int(chat["id"])] = dict(chat)

    def set_chat_admins(
        self, chat_id: int, admins: Iterable[TgUser], *, creator: TgUser | None = None
    ) -> None:
        """What getChatAdministrators / getChatMember report for a group."""
        self._admins[chat_id] = (creator, list(admins))

    def command_menu(
        self, scope: Mapping[str, Any] | None = None, language_code: str = ""
    ) -> list[dict[str, Any]] | None:
        """The commands stored for exactly this scope and language (None if never set)."""
        return self.command_menus.get((self._scope_key(scope), language_code))

    @property
    def sent(self) -> list[Call]:
        """Successful sendMessage calls, oldest first."""
        return [c for c in self.calls if c.method == "sendMessage" and c.ok]

    async def inject_message(
        self,
        text: str,
        *,
        user: TgUser,
        chat_id: int | None = None,
        chat_type: str = "private",
        chat_title: str | None = None,
        reply_to_message_id: int | None = None,
    ) -> dict[str, Any]:
        """Queue a text message from ``user``; returns the message as delivered in the update.

        A private chat's id is the user's id; a group needs a (negative) ``chat_id``. Commands
        and mentions get the entities Telegram adds, which CommandHandler relies on.
        """
        if not text or len(text) > _MAX_TEXT:
            raise ValueError("a Telegram message has 1 to 4096 characters")
        if chat_type not in ("private", "group", "supergroup", "channel"):
            raise ValueError(f"unknown chat type {chat_type!r}")
        if chat_type == "private":
            if chat_id not in (None, user.id):
                raise ValueError("a private chat's id is the user's id")
            chat = {"id": user.id, "type": "private", "first_name": user.first_name}
            if user.username:
                chat["username"] = user.username
        else:
            if chat_id is None or chat_id >= 0:
                raise ValueError(f"a {chat_type} chat needs a negative chat_id")
            chat = {"id": chat_id, "type": chat_type, "title": chat_title or "Test group"}
        known = self._chats.setdefault(chat["id"], chat)
        self._members.setdefault(known["id"], {})[user.id] = user
        message = self._new_message(known, user, {"text": text})
        entities = _entities(text)
        if entities:
            message["entities"] = entities
        if reply_to_message_id is not None:
            replied = self._messages.get((known["id"], reply_to_message_id))
            if replied is None:
                raise KeyError(f"no message {reply_to_message_id} in chat {known['id']}")
            message["reply_to_message"] = replied
        await self._enqueue({"message": message})
        return message

    async def inject_callback_query(
        self, message: Call | dict[str, Any], data: str, *, user: TgUser
    ) -> str:
        """``user`` presses the inline button carrying ``data`` on the bot's ``message``.

        The button must be on the message as it stands now; returns the callback query id.
        """
        if isinstance(message, Call):
            chat_id, message_id = message.chat_id, message.message_id
        else:
            chat_id, message_id = message["chat"]["id"], message["message_id"]
        stored = self._messages.get((int(chat_id or 0), int(message_id or 0)))
        if stored is None:
            raise KeyError(f"no message {message_id} in chat {chat_id}")
        rows = (stored.get("reply_markup") or {}).get("inline_keyboard") or []
        if not any(b.get("callback_data") == data for row in rows for b in row):
            raise ValueError(f"message {message_id} has no button with callback_data {data!r}")
        query_id = str(secrets.randbits(63))
        self._callbacks[query_id] = False
        self._members.setdefault(int(stored["chat"]["id"]), {})[user.id] = user
        await self._enqueue(
            {
                "callback_query": {
                    "id": query_id,
                    "from": user.to_api(),
                    "message": stored,
                    "chat_instance": str(abs(hash((stored["chat"]["id"], self.token)))),
                    "data": data,
                }
            }
        )
        return query_id

    # ---------------------------------------------------------------- waiting

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for_call(
        self,
        predicate: Callable[[Call], bool],
        *,
        timeout: float = _SAFE_TIMEOUT,
        what: str = "a matching call",
    ) -> Call:
        """The oldest not-yet-returned call matching ``predicate``, waiting if needed."""

        def pick() -> Call | None:
            for call in self.calls:
                if call.seq not in self._taken and predicate(call):
                    return call
            return None

        async def until_found() -> Call:
            async with self._changed:
                while (found := pick()) is None:
                    await self._changed.wait()
                return found

        try:
            found = await asyncio.wait_for(until_found(), timeout)
        except TimeoutError:
            seen = [f"{c.method} {c.status} {c.text[:50]!r}" for c in self.calls[-10:]]
            raise TimeoutError(f"no {what} within {timeout} s; calls (last 10): {seen}") from None
        self._taken.add(found.seq)
        return found

    async def wait_for_sent(
        self,
        chat_id: int,
        *,
        timeout: float = _SAFE_TIMEOUT,
        predicate: Callable[[Call], bool] | None = None,
    ) -> Call:
        """The bot's next successful sendMessage to ``chat_id``."""
        return await self.wait_for_call(
            lambda c: (
                c.method == "sendMessage"
                and c.ok
                and c.chat_id == chat_id
                and (predicate is None or predicate(c))
            ),
            timeout=timeout,
            what=f"sendMessage to {chat_id}",
        )

    async def wait_for_edit(self, chat_id: int, *, timeout: float = _SAFE_TIMEOUT) -> Call:
        """The bot's next successful editMessageText / editMessageReplyMarkup in ``chat_id``."""
        return await self.wait_for_call(
            lambda c: (
                c.method in ("editMessageText", "editMessageReplyMarkup")
                and c.ok
                and c.chat_id == chat_id
            ),
            timeout=timeout,
            what=f"edit in {chat_id}",
        )

    async def wait_for_answer(self, query_id: str, *, timeout: float = _SAFE_TIMEOUT) -> Call:
        """The bot's answerCallbackQuery for ``query_id``."""
        return await self.wait_for_call(
            lambda c: (
                c.method == "answerCallbackQuery"
                and str(c.params.get("callback_query_id")) == query_id
            ),
            timeout=timeout,
            what=f"answer to callback query {query_id}",
        )

    # ---------------------------------------------------------------- updates

    async def _enqueue(self, update: dict[str, Any]) -> None:
        update = {"update_id": self._next_update_id, **update}
        self._next_update_id += 1
        self._updates.append(update)
        await self._notify()

    def _deliverable(self, limit: int) -> list[dict[str, Any]]:
        if self._allowed_updates:
            self._updates = [u for u in self._updates if any(k in self._allowed_updates for k in u)]
        return self._updates[:limit]

    def _confirm(self, offset: int) -> None:
        if offset < 0:
            self._updates = self._updates[offset:]
        elif offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]

    async def _get_updates(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook.get("url"):
            raise TgError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = self._int_param(p, "offset", default=0)
        limit = min(100, max(1, self._int_param(p, "limit", default=100)))
        timeout = min(self.max_poll_timeout, max(0.0, self._float_param(p, "timeout", 0.0)))
        if "allowed_updates" in p:
            allowed = self._json_param(p, "allowed_updates")
            self._allowed_updates = list(allowed) if isinstance(allowed, list) else []
        self._confirm(offset)
        self._poll_generation += 1
        generation = self._poll_generation
        await self._notify()  # an older long poll now ends with 409

        def settled() -> bool:
            return (
                bool(self._deliverable(limit))
                or self._closing
                or (self._poll_generation != generation)
            )

        with contextlib.suppress(TimeoutError):
            async with self._changed:
                await asyncio.wait_for(self._changed.wait_for(settled), timeout)
        if self._poll_generation != generation:
            self.poll_conflicts += 1
            raise TgError(
                409,
                "Conflict: terminated by other getUpdates request; make sure "
                "that only one bot instance is running",
            )
        return self._deliverable(limit)

    async def _deliver_webhook(self) -> None:
        """Push pending updates to the webhook one at a time, retrying on failure like Telegram."""
        assert self._http is not None
        while self.webhook.get("url") and not self._closing:
            async with self._changed:
                await self._changed.wait_for(
                    lambda: (
                        bool(self._deliverable(1)) or not self.webhook.get("url") or self._closing
                    )
                )
            pending = self._deliverable(1)
            url = self.webhook.get("url")
            if not pending or not url:
                continue
            headers = {}
            if self.webhook.get("secret_token"):
                headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook["secret_token"]
            try:
                async with self._http.post(
                    url, json=pending[0], headers=headers, timeout=aiohttp.ClientTimeout(total=10)
                ) as r:
                    if 200 <= r.status < 300:
                        self._confirm(pending[0]["update_id"] + 1)
                        continue
                    error = f"Wrong response from the webhook: {r.status} {r.reason}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                error = f"Connection failed: {type(exc).__name__}"
            self.webhook.update(last_error_date=int(time.time()), last_error_message=error)
            await asyncio.sleep(self.webhook_retry_delay)

    # ---------------------------------------------------------------- request handling

    async def _file(self, request: web.Request) -> web.Response:
        if not secrets.compare_digest(request.match_info["token"], self.token):
            return TgError(401, "Unauthorized").response()
        return TgError(404, "Not Found").response()

    async def _params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method != "POST" or not request.can_read_body:
            return params
        ctype = request.content_type
        if ctype == "application/json":
            body = _loads(await request.text())
            if not isinstance(body, dict):
                raise _bad("can't parse JSON object")
            params.update(body)
        elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key, value in form.items():
                params[key] = value if isinstance(value, str) else getattr(value, "filename", "")
        return params

    async def _handle(self, request: web.Request) -> web.Response:
        if not secrets.compare_digest(request.match_info["token"], self.token):
            return TgError(401, "Unauthorized").response()
        name = request.match_info["method"]
        handler = self._methods().get(name.lower())
        if handler is None:
            return TgError(404, "Not Found").response()
        canonical = handler.__name__.removeprefix("_m_")
        try:
            params = await self._params(request)
        except TgError as exc:
            return exc.response()
        if canonical == "getUpdates":
            self.get_updates_calls += 1
            try:
                return web.json_response({"ok": True, "result": await self._get_updates(params)})
            except TgError as exc:
                return exc.response()
        for i, (method, retry_after) in enumerate(self._rate_limits):
            if method == name.lower():
                del self._rate_limits[i]
                error = TgError(
                    429,
                    f"Too Many Requests: retry after {retry_after}",
                    {"retry_after": retry_after},
                )
                await self._log(canonical, params, 429, None)
                return error.response()
        try:
            result = await handler(params)
        except TgError as exc:
            await self._log(canonical, params, exc.code, exc.description)
            return exc.response()
        except Exception as exc:
            # A bug in the fake, not an API refusal: recorded so the fixture fails the test.
            log.exception("fake_telegram failed on %s", canonical)
            self.errors.append(f"{canonical}: {exc!r}")
            return TgError(500, f"Internal Server Error: fake_telegram bug: {exc!r}").response()
        await self._log(canonical, params, 200, result)
        return web.json_response({"ok": True, "result": result})

    async def _log(self, method: str, params: dict[str, Any], status: int, result: Any) -> None:
        self.calls.append(Call(next(self._seq), method, params, status, result))
        await self._notify()

    def _methods(self) -> dict[str, Callable[[dict[str, Any]], Any]]:
        return {
            name.removeprefix("_m_").lower(): getattr(self, name)
            for name in dir(self)
            if name.startswith("_m_")
        }

    # ---------------------------------------------------------------- parameter helpers

    @staticmethod
    def _int_param(p: dict[str, Any], key: str, *, default: int | None = None) -> int:
        value = p.get(key)
        if value is None or value == "":
            if default is None:
                raise _bad(f"{key} is empty")
            return default
        if not _is_int(value):
            raise _bad(f"invalid {key} specified")
        return _as_int(value)

    @staticmethod
    def _float_param(p: dict[str, Any], key: str, default: float) -> float:
        value = p.get(key)
        if value is None or value == "":
            return default
        try:
            return float(value)
        except (TypeError, ValueError):
            raise _bad(f"invalid {key} specified") from None

    @staticmethod
    def _json_param(p: dict[str, Any], key: str) -> Any:
        value = p.get(key)
        if isinstance(value, str):
            parsed = _loads(value)
            if parsed is None and value.strip() not in ("null", ""):
                raise _bad(f"can't parse {key} JSON object")
            return parsed
        return value

    @staticmethod
    def _bool_param(p: dict[str, Any], key: str) -> bool:
        value = p.get(key)
        return value is True or str(value).lower() in ("true", "1")

    def _chat(self, p: dict[str, Any], key: str = "chat_id") -> dict[str, Any]:
        value = p.get(key)
        if value is None or value == "":
            raise _bad("chat_id is empty")
        if _is_int(value):
            chat = self._chats.get(_as_int(value))
        else:
            username = str(value).removeprefix("@").lower()
            chat = next(
                (c for c in self._chats.values() if str(c.get("username", "")).lower() == username),
                None,
            )
        if chat is None:
            raise _bad("chat not found")
        return chat

    def _new_message(
        self, chat: dict[str, Any], sender: TgUser, fields: dict[str, Any]
    ) -> dict[str, Any]:
        counter = self._message_ids.setdefault(chat["id"], itertools.count(1))
        message = {
            "message_id": next(counter),
            "from": sender.to_api(),
            "chat": chat,
            "date": int(time.time()),
            **fields,
        }
        self._messages[(chat["id"], message["message_id"])] = message
        return message

    # ---------------------------------------------------------------- Bot API methods

    async def _m_getMe(self, p: dict[str, Any]) -> dict[str, Any]:
        return self.bot_user.to_api() | {
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _m_getUpdates(self, p: dict[str, Any]) -> Any:  # dispatched in _handle
        raise AssertionError("unreachable")

    async def _m_logOut(self, p: dict[str, Any]) -> bool:
        return True

    async def _m_close(self, p: dict[str, Any]) -> bool:
        return True

    async def _m_setWebhook(self, p: dict[str, Any]) -> bool:
        url = str(p.get("url") or "")
        if not url:
            return await self._m_deleteWebhook(p)
        if not re.match(r"https?://", url) or (
            url.startswith("http:") and not self.allow_http_webhooks
        ):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        secret = str(p.get("secret_token") or "")
        if secret and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise _bad("secret token contains unallowed characters")
        if self._bool_param(p, "drop_pending_updates"):
            self._updates.clear()
        if "allowed_updates" in p:
            allowed = self._json_param(p, "allowed_updates")
            self._allowed_updates = list(allowed) if isinstance(allowed, list) else []
        self.webhook = {
            "url": url,
            "secret_token": secret,
            "max_connections": self._int_param(p, "max_connections", default=40),
        }
        await self._notify()
        if self._delivery is None or self._delivery.done():
            self._delivery = asyncio.create_task(self._deliver_webhook())
        return True

    async def _m_deleteWebhook(self, p: dict[str, Any]) -> bool:
        self.webhook = {}
        if self._bool_param(p, "drop_pending_updates"):
            self._updates.clear()
        await self._notify()
        return True

    async def _m_getWebhookInfo(self, p: dict[str, Any]) -> dict[str, Any]:
        info: dict[str, Any] = {
            "url": self.webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if self.webhook.get("url"):
            info["max_connections"] = self.webhook.get("max_connections", 40)
            if self._allowed_updates:
                info["allowed_updates"] = self._allowed_updates
        for key in ("last_error_date", "last_error_message"):
            if key in self.webhook:
                info[key] = self.webhook[key]
        return info

    async def _m_sendMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(p)
        text = p.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _bad("message text is empty")
        plain = plain_text(text, p.get("parse_mode"))
        if len(plain) > _MAX_TEXT:
            raise _bad("message is too long")
        markup = self._markup(p)
        fields: dict[str, Any] = {"text": plain}
        if markup is not None and "inline_keyboard" in markup:
            fields["reply_markup"] = markup
        reply = self._json_param(p, "reply_parameters") or {}
        reply_to = reply.get("message_id") if isinstance(reply, dict) else None
        reply_to = reply_to if reply_to is not None else p.get("reply_to_message_id")
        if reply_to is not None:
            replied = self._messages.get(
                (chat["id"], _as_int(reply_to) if _is_int(reply_to) else 0)
            )
            if replied is not None:
                fields["reply_to_message"] = replied
            elif not (isinstance(reply, dict) and reply.get("allow_sending_without_reply")):
                raise _bad("message to be replied not found")
        return self._new_message(chat, self.bot_user, fields)

    def _markup(self, p: dict[str, Any]) -> dict[str, Any] | None:
        if p.get("reply_markup") in (None, ""):
            return None
        markup = self._json_param(p, "reply_markup")
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        rows = markup.get("inline_keyboard")
        if rows is None:
            return markup
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise _bad("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
        actions = (
            "callback_data",
            "url",
            "switch_inline_query",
            "login_url",
            "web_app",
            "switch_inline_query_current_chat",
            "copy_text",
            "pay",
            "callback_game",
            "switch_inline_query_chosen_chat",
        )
        for row in rows:
            for button in row:
                if not isinstance(button, dict) or not button.get("text"):
                    raise _bad(
                        "can't parse inline keyboard button: Text buttons are "
                        "unallowed in the inline keyboard"
                    )
                if sum(1 for a in actions if a in button) != 1:
                    raise _bad(
                        "can't parse inline keyboard button: Text buttons are "
                        "unallowed in the inline keyboard"
                    )
                data = button.get("callback_data")
                if data is not None and not 1 <= len(str(data).encode()) <= 64:
                    raise _bad("BUTTON_DATA_INVALID")
                url = button.get("url")
                if url is not None and not re.match(r"(https?|tg)://\S+$", str(url)):
                    raise _bad(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")
        return markup

    def _own_message(self, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("inline_message_id"):
            raise _bad("message to edit not found")
        chat = self._chat(p)
        message = self._messages.get((chat["id"], self._int_param(p, "message_id")))
        if message is None:
            raise _bad("message to edit not found")
        if message["from"]["id"] != self.bot_user.id:
            raise _bad("message can't be edited")
        return message

    async def _m_editMessageText(self, p: dict[str, Any]) -> dict[str, Any]:
        message = self._own_message(p)
        text = p.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _bad("message text is empty")
        plain = plain_text(text, p.get("parse_mode"))
        if len(plain) > _MAX_TEXT:
            raise _bad("message is too long")
        markup = self._markup(p)
        if plain == message.get("text") and markup == message.get("reply_markup"):
            raise _bad(
                "message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of "
                "the message"
            )
        message["text"] = plain
        if markup is not None and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        message["edit_date"] = int(time.time())
        return message

    async def _m_editMessageReplyMarkup(self, p: dict[str, Any]) -> dict[str, Any]:
        message = self._own_message(p)
        markup = self._markup(p)
        if markup == message.get("reply_markup"):
            raise _bad(
                "message is not modified: specified new message content and reply "
                "markup are exactly the same as a current content and reply markup of "
                "the message"
            )
        if markup:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        message["edit_date"] = int(time.time())
        return message

    async def _m_deleteMessage(self, p: dict[str, Any]) -> bool:
        chat = self._chat(p)
        if self._messages.pop((chat["id"], self._int_param(p, "message_id")), None) is None:
            raise _bad("message to delete not found")
        return True

    async def _m_sendChatAction(self, p: dict[str, Any]) -> bool:
        self._chat(p)
        return True

    async def _m_answerCallbackQuery(self, p: dict[str, Any]) -> bool:
        query_id = str(p.get("callback_query_id") or "")
        if self._callbacks.get(query_id, True):
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        if len(str(p.get("text") or "")) > 200:
            raise _bad("MESSAGE_TOO_LONG")
        self._callbacks[query_id] = True
        return True

    def _scope_key(self, scope: Mapping[str, Any] | None) -> tuple[Any, ...]:
        if not scope:
            return ("default",)
        kind = scope.get("type")
        if kind in ("default", "all_private_chats", "all_group_chats", "all_chat_administrators"):
            return (kind,)
        if kind in ("chat", "chat_administrators", "chat_member"):
            chat_id = self._chat(dict(scope))["id"]
            if kind == "chat_member":
                return (kind, chat_id, self._int_param(dict(scope), "user_id"))
            return (kind, chat_id)
        raise _bad("wrong parameter scope: unsupported scope type")

    def _menu_key(self, p: dict[str, Any]) -> tuple[tuple[Any, ...], str]:
        scope = self._json_param(p, "scope") if p.get("scope") not in (None, "") else None
        if scope is not None and not isinstance(scope, dict):
            raise _bad("can't parse BotCommandScope JSON object")
        language = str(p.get("language_code") or "")
        if language and not re.fullmatch(r"[a-z]{2}", language):
            raise _bad("invalid language code specified")
        return self._scope_key(scope), language

    async def _m_setMyCommands(self, p: dict[str, Any]) -> bool:
        key = self._menu_key(p)
        commands = self._json_param(p, "commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise _bad("can't parse commands JSON object")
        clean = []
        for command in commands:
            if not isinstance(command, dict):
                raise _bad("can't parse BotCommand JSON object")
            name, description = command.get("command"), command.get("description")
            if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise _bad("BOT_COMMAND_INVALID")
            if not isinstance(description, str) or not 1 <= len(description) <= 256:
                raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")
            clean.append({"command": name, "description": description})
        if clean:
            self.command_menus[key] = clean
        else:
            self.command_menus.pop(key, None)
        return True

    async def _m_getMyCommands(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        return list(self.command_menus.get(self._menu_key(p), []))

    async def _m_deleteMyCommands(self, p: dict[str, Any]) -> bool:
        self.command_menus.pop(self._menu_key(p), None)
        return True

    def _admin_members(self, chat: dict[str, Any]) -> list[dict[str, Any]]:
        creator, admins = self._admins.get(chat["id"], (None, []))
        members = []
        if creator is not None:
            members.append({"status": "creator", "user": creator.to_api(), "is_anonymous": False})
        rights = dict.fromkeys(
            (
                "can_manage_chat",
                "can_delete_messages",
                "can_manage_video_chats",
                "can_restrict_members",
                "can_change_info",
                "can_invite_users",
                "can_post_stories",
                "can_edit_stories",
                "can_delete_stories",
                "can_pin_messages",
            ),
            True,
        )
        rights["can_promote_members"] = False
        for admin in admins:
            members.append(
                {
                    "status": "administrator",
                    "user": admin.to_api(),
                    "can_be_edited": False,
                    "is_anonymous": False,
                    **rights,
                }
            )
        return members

    async def _m_getChatAdministrators(self, p: dict[str, Any]) -> list[dict[str, Any]]:
        chat = self._chat(p)
        if chat["type"] == "private":
            raise _bad("there are no administrators in the private chat")
        return self._admin_members(chat)

    async def _m_getChatMember(self, p: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(p)
        user_id = self._int_param(p, "user_id")
        for member in self._admin_members(chat):
            if member["user"]["id"] == user_id:
                return member
        user = self._members.get(chat["id"], {}).get(user_id)
        if user_id == self.bot_user.id:
            user = self.bot_user
        if user is None:
            raise _bad("user not found")
        return {"status": "member", "user": user.to_api()}

    async def _m_getChat(self, p: dict[str, Any]) -> dict[str, Any]:
        chat = self._chat(p)
        return chat | {
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }


# -------------------------------------------------------------------------------------------
# Text helpers: entities for injected messages, and the parse_mode checks.
# -------------------------------------------------------------------------------------------


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _entities(text: str) -> list[dict[str, Any]]:
    """The entities Telegram attaches to a user's text (commands and @mentions)."""
    found = []
    for kind, pattern in (
        ("bot_command", r"(?<![\w/])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?"),
        ("mention", r"(?<![\w@/])@[A-Za-z0-9_]{5,32}"),
    ):
        for m in re.finditer(pattern, text):
            found.append(
                {
                    "type": kind,
                    "offset": _utf16_len(text[: m.start()]),
                    "length": _utf16_len(m.group()),
                }
            )
    return sorted(found, key=lambda e: e["offset"])


_HTML_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "code",
    "pre",
    "blockquote",
    "tg-emoji",
    "tg-time",
}


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode())


def plain_text(text: str, parse_mode: Any) -> str:
    """The plain text Telegram would show, or the "can't parse entities" TgError it would give.

    Public so tests can check a transport's escaping without a round trip.
    """
    mode = str(parse_mode or "")
    if not mode:
        return text
    if mode.lower() == "html":
        return _parse_html(text)
    if mode == "MarkdownV2":
        return _parse_markdown_v2(text)
    if mode == "Markdown":
        return _parse_markdown_legacy(text)
    raise _bad(f"unsupported parse_mode {mode}")


def _parse_html(text: str) -> str:
    stack: list[str] = []
    plain: list[str] = []
    pos = 0
    while (lt := text.find("<", pos)) != -1:
        plain.append(text[pos:lt])
        m = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)(\s[^<>]*)?>").match(text, lt)
        if m is None:
            name = re.match(r"</?([^\s<>/]*)", text[lt:])
            raise _bad(
                f'can\'t parse entities: Unsupported start tag "{name and name.group(1)}" '
                f"at byte offset {_byte_offset(text, lt)}"
            )
        closing, tag = m.group(1) == "/", m.group(2).lower()
        if tag not in _HTML_TAGS:
            raise _bad(
                f'can\'t parse entities: Unsupported start tag "{tag}" at byte offset '
                f"{_byte_offset(text, lt)}"
            )
        if closing:
            if not stack or stack[-1] != tag:
                raise _bad(
                    f"can't parse entities: Unmatched end tag at byte offset "
                    f'{_byte_offset(text, lt)}, expected "</{stack[-1] if stack else ""}>'
                    f'", found "</{tag}>"'
                )
            stack.pop()
        else:
            stack.append(tag)
        pos = m.end()
    plain.append(text[pos:])
    if stack:
        raise _bad(
            f"can't parse entities: Can't find end tag corresponding to start tag \"{stack[-1]}\""
        )
    return html.unescape("".join(plain))


_MD2_RESERVED = set("_*[]()~`>#+-=|{}.!")


def _parse_markdown_v2(text: str) -> str:
    """Enough of MarkdownV2 to refuse what Telegram refuses: unescaped reserved characters."""
    plain: list[str] = []
    open_marks: list[tuple[str, int]] = []
    i, n = 0, len(text)
    in_link_text = False
    while i < n:
        ch = text[i]
        if ch == "\\":
            if i + 1 < n:
                plain.append(text[i + 1])
            i += 2
            continue
        if ch == "`":
            fence = "```" if text.startswith("```", i) else "`"
            end = _unescaped(text, fence, i + len(fence))
            if end == -1:
                raise _bad(
                    f"can't parse entities: Can't find end of Pre entity at byte offset "
                    f"{_byte_offset(text, i)}"
                )
            plain.append(text[i + len(fence) : end].replace("\\`", "`").replace("\\\\", "\\"))
            i = end + len(fence)
            continue
        mark = next((m for m in ("__", "||", "*", "_", "~") if text.startswith(m, i)), None)
        if mark is not None:
            if open_marks and open_marks[-1][0] == mark:
                open_marks.pop()
            else:
                open_marks.append((mark, i))
            i += len(mark)
            continue
        if (ch == "[" or text.startswith("![", i)) and not in_link_text:
            in_link_text = True  # a link, or a custom emoji ![👍](tg://emoji?id=...)
            i += 2 if ch == "!" else 1
            continue
        if ch == "]" and in_link_text:
            if not text.startswith("(", i + 1):
                raise _bad(
                    "can't parse entities: Character ']' is reserved and must be "
                    "escaped with the preceding '\\'"
                )
            end = _unescaped(text, ")", i + 2)
            if end == -1:
                raise _bad(
                    "can't parse entities: Can't find end of a URL at byte offset "
                    f"{_byte_offset(text, i)}"
                )
            in_link_text = False
            i = end + 1
            continue
        if ch == ">" and (i == 0 or text[i - 1] == "\n"):
            i += 1
            continue
        if ch in _MD2_RESERVED:
            raise _bad(
                f"can't parse entities: Character '{ch}' is reserved and must be escaped "
                f"with the preceding '\\'"
            )
        plain.append(ch)
        i += 1
    if in_link_text:
        raise _bad("can't parse entities: Can't find end of TextUrl entity")
    if open_marks:
        mark, at = open_marks[-1]
        raise _bad(
            f"can't parse entities: Can't find end of the entity starting at byte offset "
            f"{_byte_offset(text, at)}"
        )
    return "".join(plain)


def _unescaped(text: str, needle: str, start: int) -> int:
    """Index of the first ``needle`` at or after ``start`` not escaped by a backslash, or -1."""
    i = start
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text.startswith(needle, i):
            return i
        else:
            i += 1
    return -1


def _parse_markdown_legacy(text: str) -> str:
    plain: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "*_`":
            end = text.find(ch, i + 1)
            if end == -1:
                raise _bad(
                    f"can't parse entities: Can't find end of the entity starting at "
                    f"byte offset {_byte_offset(text, i)}"
                )
            plain.append(text[i + 1 : end])
            i = end + 1
            continue
        plain.append(ch)
        i += 1
    return "".join(plain)


def simulator_from_args(argv: list[str]) -> Simulator:
    """Build a fake from command-line options, to poke at it by hand with a real client."""
    parser = argparse.ArgumentParser(prog="fake_telegram", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="the bot token clients must use")
    parser.add_argument("--bot-username", default="fake_test_bot")
    args = parser.parse_args(argv)
    return FakeTelegram(
        token=args.token, host=args.host, port=args.port, bot_username=args.bot_username
    )


async def _serve(argv: list[str]) -> None:
    fake = simulator_from_args(argv)
    async with fake:
        assert isinstance(fake, FakeTelegram)
        print(f"base_url={fake.base_url} base_file_url={fake.base_file_url}", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    import sys

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(sys.argv[1:]))
