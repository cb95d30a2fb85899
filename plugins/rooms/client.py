"""The VS Media rooms customer API over HTTP: joinRoom, leaveRoom, pingRoom, updateCredits.

Every call is a form POST to ``{url}/customer?key={key}``. The client knows nothing about chat:
it takes the typed requests from :mod:`.models` and returns typed results or raises a
:class:`~.errors.RoomsError`.

Retries: a call whose request never left this machine (connection refused, connect timeout)
is always retried with backoff, as repeating it cannot do anything twice. Ambiguous failures
(timeouts after sending, broken connections, 5xx and 429, garbled bodies) are retried only
for the idempotent calls, pingRoom and leaveRoom; for joinRoom and updateCredits they are
reported, since a repeat could add a second room member or overwrite a newer balance. A
refusal (``success: false``) and 401/403 are never retried.

The key travels in the query string, so it would appear in httpx's request log lines: a
logging filter on the ``httpx`` logger redacts it, and our own messages name the endpoint
without the query. Messages from the API are redacted too before they reach an exception.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
import urllib.parse
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Self

import httpx
from pydantic import SecretStr

from bot.backoff import backoff_delays

from .errors import (
    RoomsAuthError,
    RoomsBadResponse,
    RoomsError,
    RoomsHTTPError,
    RoomsInvalidRequest,
    RoomsRefused,
    RoomsTimeout,
    RoomsUnavailable,
)
from .models import (
    MAX_DISPLAY_NICKNAME,
    Acknowledged,
    JoinRequest,
    JoinResult,
    LeaveRequest,
    PingRequest,
    RoomsReply,
    RoomsRequest,
    UpdateCreditsRequest,
    check_nickname,
)
from .replies import ReplyFormatError, parse_reply

if TYPE_CHECKING:
    from .config import RoomsConfig

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
"""Largest reply body we read; the API's replies are a few dozen bytes."""

_NOT_IN_ROOM = re.compile(r"\bnot in (?:this|the) room\b", re.IGNORECASE)
_KEY_REFUSAL = re.compile(r"\b(?:api[ _-]?)?key\b", re.IGNORECASE)


def is_not_in_room(error: BaseException) -> bool:
    """True for the API's "Customer is not in this room." refusal (leave and ping).

    On a leave it means the wanted state already holds: the customer is out of the room.
    """
    return isinstance(error, RoomsRefused) and bool(_NOT_IN_ROOM.search(error.api_message))


def is_key_refusal(error: BaseException) -> bool:
    """True when the API refused because of the bot's key ("Invalid API key.").

    The API has no result codes, so this reads its text; the key itself is never in it.
    """
    if isinstance(error, RoomsAuthError):
        return True
    return isinstance(error, RoomsRefused) and bool(_KEY_REFUSAL.search(error.api_message))


class _SecretFilter(logging.Filter):
    """Replaces every registered secret in a log record's final text with ``***``."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: collections.Counter[str] = collections.Counter()

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        try:
            text = record.getMessage()
        except Exception:  # a broken record is logging's problem, not ours to worsen
            return True
        clean = redact(text, self.secrets)
        if clean != text:
            record.msg, record.args = clean, None
        return True


_LOG_FILTER = _SecretFilter()
logging.getLogger("httpx").addFilter(_LOG_FILTER)


def redact(text: str, secrets: Iterable[str]) -> str:
    """Hide each secret, also in its URL-encoded spellings, behind ``***``."""
    for secret in secrets:
        if not secret:
            continue
        for spelling in {
            secret,
            urllib.parse.quote(secret, safe=""),
            urllib.parse.quote_plus(secret),
        }:
            text = text.replace(spelling, "***")
    return text


def customer_endpoint(url: str) -> httpx.URL:
    """The ``/customer`` endpoint under a base URL (a URL already ending in it is kept)."""
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError):
        raise RoomsInvalidRequest("The rooms URL is not a valid URL.") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise RoomsInvalidRequest("The rooms URL is not an http:// or https:// URL.")
    if "key" in parsed.params:
        raise RoomsInvalidRequest("The rooms URL must not contain the key; set 'key' instead.")
    path = parsed.path.rstrip("/")
    if not path.endswith("/customer"):
        path += "/customer"
    return parsed.copy_with(path=path)


class _AttemptFailed(Exception):
    """One attempt failed: ``transient`` if a retry may help, ``sent`` if it may have landed."""

    def __init__(self, error: RoomsError, *, transient: bool, sent: bool) -> None:
        super().__init__(error.message)
        self.error = error
        self.transient = transient
        self.sent = sent


class RoomsClient:
    """An HTTP client for the rooms customer API; share one per bot, it is concurrency-safe.

    ``timeout`` bounds each attempt (connect, send and reading the whole answer); a retried
    call may take up to ``retries + 1`` attempts plus backoff delays between them.
    """

    def __init__(
        self,
        url: str,
        key: str | SecretStr,
        *,
        timeout: float = 10.0,
        retries: int = 2,
        retry_base: float = 0.2,
        retry_cap: float = 2.0,
        max_connections: int = 20,
    ) -> None:
        self.endpoint = customer_endpoint(url)
        self._key = key.get_secret_value() if isinstance(key, SecretStr) else key
        if not self._key:
            raise RoomsInvalidRequest("The rooms API key is empty.")
        if timeout <= 0:
            raise RoomsInvalidRequest("The rooms timeout must be more than 0 seconds.")
        if retries < 0:
            raise RoomsInvalidRequest("The rooms retry count must not be negative.")
        self.timeout = timeout
        self.retries = retries
        self.retry_base = retry_base
        self.retry_cap = retry_cap
        self._max_connections = max_connections
        #: built by the first request (:meth:`_pool`): httpx imports httpcore, h11 and anyio
        #: when its first client is made (~25 ms), and a bot that starts, or a check that
        #: only builds the client, need not pay that on its event loop
        self._http: httpx.AsyncClient | None = None
        self._closed = False
        #: the last call's failure to reach or satisfy the API (None after any answer that
        #: shows the API works); read by the plugin's health check, which must not call out
        self.last_failure: RoomsError | None = None
        _LOG_FILTER.secrets[self._key] += 1

    @classmethod
    def from_config(
        cls, config: RoomsConfig, *, url: str | None = None, key: str | None = None
    ) -> RoomsClient:
        """Build from the plugin's config; ``url``/``key`` override it (e.g. a simulator's)."""
        return cls(
            url or config.url,
            key or config.key,
            timeout=config.timeout,
            retries=config.retries,
        )

    def __repr__(self) -> str:
        return f"RoomsClient({str(self.endpoint)!r})"

    @property
    def closed(self) -> bool:
        return self._closed

    def record_failure(self, error: RoomsError) -> None:
        """Note a failure seen around a call, e.g. a caller's own timeout that cancelled it.

        Such a call never finishes here, so :attr:`last_failure` would not show it; the next
        answered call clears it again.
        """
        if not isinstance(error, RoomsRefused) or is_key_refusal(error):
            self.last_failure = error

    async def join_room(self, request: JoinRequest) -> JoinResult:
        """Enter a room; returns the nickname the room displays (usually with ``_####``)."""
        reply = await self.call(request)
        shown = reply.fields.get("nickname")
        if shown is None or (isinstance(shown, str) and not shown.strip()):
            return JoinResult(nickname=request.nickname, message=reply.message)
        try:
            nickname = check_nickname(str(shown), MAX_DISPLAY_NICKNAME)
        except RoomsInvalidRequest as exc:
            # The API let the customer in under a name we cannot use in later calls; with no
            # pings they are purged soon, and the caller hears why.
            raise RoomsBadResponse(f"unusable nickname: {exc.message}") from None
        return JoinResult(nickname=nickname, message=reply.message)

    async def leave_room(self, request: LeaveRequest) -> Acknowledged:
        """Leave a room; retried on transient failures."""
        reply = await self.call(request)
        return Acknowledged(request.function, reply.message)

    async def ping_room(self, request: PingRequest) -> Acknowledged:
        """Keep a customer in a room; retried on transient failures."""
        reply = await self.call(request)
        return Acknowledged(request.function, reply.message)

    async def update_credits(self, request: UpdateCreditsRequest) -> Acknowledged:
        """Set a registered customer's balance as the API sees it."""
        reply = await self.call(request)
        return Acknowledged(request.function, reply.message)

    async def call(self, request: RoomsRequest) -> RoomsReply:
        """Send any request with the retry policy above; ``success: false`` raises.

        A leave retried after an attempt that may have landed can be refused with "not in
        this room" because that first attempt did land: that refusal counts as success.
        """
        try:
            reply = await self._call(request)
        except RoomsRefused as exc:
            self.last_failure = exc if is_key_refusal(exc) else None
            raise
        except RoomsError as exc:
            if not isinstance(exc, RoomsInvalidRequest):
                self.last_failure = exc
            raise
        self.last_failure = None
        return reply

    async def _call(self, request: RoomsRequest) -> RoomsReply:
        if self._closed:
            raise RoomsUnavailable("The rooms client is shut down.")
        delays = backoff_delays(base=self.retry_base, cap=self.retry_cap)
        attempts = self.retries + 1
        maybe_landed = False
        for attempt in range(1, attempts + 1):
            try:
                reply = await self._attempt(request)
            except _AttemptFailed as failed:
                maybe_landed = maybe_landed or failed.sent
                retry = failed.transient and (request.idempotent or not failed.sent)
                if not retry or attempt == attempts or self._closed:
                    raise failed.error from None
                delay = next(delays)
                log.info(
                    "rooms: %s to %s failed (%s), attempt %d/%d, retrying in %.2fs",
                    request.function,
                    self.endpoint,
                    failed.error.code,
                    attempt,
                    attempts,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            if not reply.success:
                refusal = RoomsRefused(request.function, self._redact(reply.message))
                if isinstance(request, LeaveRequest) and maybe_landed and is_not_in_room(refusal):
                    return RoomsReply(True, refusal.api_message, reply.fields)
                raise refusal
            return reply
        raise AssertionError("unreachable")  # pragma: no cover

    def _pool(self) -> httpx.AsyncClient:
        """The connection pool, built on first use."""
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout),
                limits=httpx.Limits(
                    max_connections=self._max_connections,
                    max_keepalive_connections=self._max_connections,
                ),
                headers={"Accept": "application/json, text/javascript, text/xml, */*;q=0.5"},
                follow_redirects=False,
                # A plain-http endpoint (a local gateway, the simulator) never uses TLS, and
                # loading the CA bundle costs tens of milliseconds; with redirects off, no
                # request can leave that scheme. https endpoints verify as usual.
                verify=self.endpoint.scheme == "https",
            )
        return self._http

    async def _attempt(self, request: RoomsRequest) -> RoomsReply:
        form = request.form()
        try:
            async with asyncio.timeout(self.timeout):
                async with self._pool().stream(
                    "POST", self.endpoint, params={"key": self._key}, data=form
                ) as response:
                    status = response.status_code
                    body = await self._read_body(response)
        except (TimeoutError, httpx.TimeoutException) as exc:
            sent = not isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout)
            raise _AttemptFailed(RoomsTimeout(self.timeout), transient=True, sent=sent) from None
        except httpx.ConnectError:
            raise _AttemptFailed(RoomsUnavailable(), transient=True, sent=False) from None
        except httpx.TransportError as exc:
            log.info(
                "rooms: %s to %s broke: %s", request.function, self.endpoint, type(exc).__name__
            )
            error = RoomsUnavailable("The connection to the rooms service broke; please try again.")
            raise _AttemptFailed(error, transient=True, sent=True) from None
        except RuntimeError:  # httpx raises this once the client is closed
            if not self._closed:
                raise
            error = RoomsUnavailable("The rooms client is shut down.")
            raise _AttemptFailed(error, transient=False, sent=False) from None
        if status in (401, 403):
            raise _AttemptFailed(RoomsAuthError(status), transient=False, sent=True)
        if not 200 <= status < 300:
            transient = status == 429 or status >= 500
            raise _AttemptFailed(RoomsHTTPError(status), transient=transient, sent=True)
        if body is None:
            error = RoomsBadResponse(f"the body is larger than {MAX_BODY} bytes")
            raise _AttemptFailed(error, transient=True, sent=True)
        try:
            return parse_reply(body)
        except ReplyFormatError as exc:
            log.warning(
                "rooms: unreadable %s reply from %s: %s", request.function, self.endpoint, exc
            )
            raise _AttemptFailed(RoomsBadResponse(str(exc)), transient=True, sent=True) from None

    @staticmethod
    async def _read_body(response: httpx.Response) -> str | None:
        """The body as text, or None when it exceeds :data:`MAX_BODY`."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_BODY:
                return None
            chunks.append(chunk)
        raw = b"".join(chunks)
        encoding = response.charset_encoding or "utf-8"
        try:
            return raw.decode(encoding, errors="replace")
        except LookupError:  # an unknown charset label
            return raw.decode("utf-8", errors="replace")

    def _redact(self, text: str) -> str:
        return redact(text, [self._key])

    async def close(self) -> None:
        """Close the connection pool; calls made afterwards raise :class:`RoomsUnavailable`."""
        if self._closed:
            return
        self._closed = True
        if self._http is not None:
            await self._http.aclose()
        _LOG_FILTER.secrets[self._key] -= 1
        if _LOG_FILTER.secrets[self._key] <= 0:
            del _LOG_FILTER.secrets[self._key]

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
