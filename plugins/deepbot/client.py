"""The DeepBot client: typed calls over :class:`~.connection.DeepBotConnection`.

Every argument is validated before a frame is built (:mod:`.protocol`), and every reply is
read into a typed result or a typed error. Amounts are whole points unless the install takes
decimals (``whole_points``). The calls beyond the document (pages of viewers, their count,
an absolute VIP expiry) follow the public clients named in the simulator. ``viewer_lock``
keeps the moves of one viewer's points from interleaving (``give``, admin point commands).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Self

from .connection import (
    DEFAULT_TIMEOUT,
    DEFAULT_URL,
    ConnectionState,
    DeepBotConnection,
    check_secret,
    check_url,
)
from .errors import DeepBotError, InvalidArgument, UserNotFound
from .models import DeepBotUser, parse_number, parse_user, parse_users
from .protocol import (
    ADD_POINTS,
    ADD_TO_ESCROW,
    ALL_USERS,
    CANCEL_ESCROW,
    COMMIT_USER_ESCROW,
    DEL_POINTS,
    GET_HOURS,
    GET_POINTS,
    GET_RANK,
    GET_TOP_USERS,
    GET_USER,
    GET_USERS,
    GET_USERS_COUNT,
    MSG_LIST_EMPTY,
    PAGE_LIMIT,
    SET_POINTS,
    SET_VIP,
    SET_VIP_EXPIRY,
    check_points,
    check_user,
    check_vip_days,
    check_vip_level,
    error_for,
    is_success,
    unexpected,
)

if TYPE_CHECKING:
    from .config import DeepBotConfig

__all__ = [
    "DEFAULT_TIMEOUT",
    "DEFAULT_URL",
    "ConnectionState",
    "DeepBotClient",
    "check_secret",
    "check_url",
]


class DeepBotClient(DeepBotConnection):
    """A DeepBot API consumer; ``async with DeepBotClient(url, secret) as client: ...``.

    ``timeout`` bounds every call (and the registration); ``connect_timeout`` bounds how long
    :meth:`connect` waits for the first registered connection. ``reconnect_base`` and
    ``reconnect_cap`` shape the backoff between connection attempts. ``whole_points``
    refuses fractional amounts (DeepBot counts whole points unless configured otherwise).
    """

    def __init__(self, *args: Any, whole_points: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.whole_points = whole_points
        # One lock per viewer (lower-cased), with the number of holders waiting on it.
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @classmethod
    def from_config(
        cls, config: DeepBotConfig, *, url: str | None = None, secret: str | None = None
    ) -> Self:
        """Build a client from the plugin's config; ``url``/``secret`` override it, which
        simulate mode needs (the in-process simulator's address and made-up secret)."""
        return cls(
            url or config.url,
            secret or config.secret_value() or "",
            timeout=config.timeout,
            reconnect_base=config.reconnect_min_delay,
            reconnect_cap=config.reconnect_max_delay,
            whole_points=not config.decimals,
        )

    @staticmethod
    def _refused(msg: Any, function: str, user: str) -> DeepBotError:
        return error_for(msg, function=function, user=user) or unexpected(
            msg, function=function, user=user
        )

    async def _number(self, function: str, user: object) -> Decimal:
        name = check_user(user, function=function)
        msg = await self._call(function, name)
        error = error_for(msg, function=function, user=name)
        if error is not None:
            raise error
        number = parse_number(msg)
        if number is None:
            raise unexpected(msg, function=function, user=name)
        return number

    async def _change(self, function: str, user: str, *args: str) -> None:
        msg = await self._call(function, user, *args)
        if is_success(msg):
            return
        if function in (SET_VIP, SET_VIP_EXPIRY) and isinstance(msg, str):
            if msg.strip().lower() == "failed":
                # deepclient.py: set_vip's bare "failed" means an unknown user.
                raise UserNotFound(
                    f"DeepBot has no user named {user}."
                    if function == SET_VIP
                    else f"DeepBot refused that VIP expiry for {user} (unknown user or date).",
                    code=msg.strip(),
                    function=function,
                    user=user,
                )
        raise self._refused(msg, function, user)

    async def get_user(self, user: str) -> DeepBotUser:
        """The viewer's record: points, watch time, VIP level and expiry, mod level, dates."""
        name = check_user(user, function=GET_USER)
        msg = await self._call(GET_USER, name)
        error = error_for(msg, function=GET_USER, user=name)
        if error is not None:
            raise error
        record = parse_user(msg, requested=name)
        if record is None:
            raise unexpected(msg, function=GET_USER, user=name)
        return record

    async def user_exists(self, user: str) -> bool:
        """Whether DeepBot knows the viewer; a timeout still raises (silence is ambiguous)."""
        try:
            await self.get_user(user)
        except UserNotFound:
            return False
        return True

    async def get_points(self, user: str) -> Decimal:
        """The viewer's spendable balance (escrowed points are not included)."""
        return await self._number(GET_POINTS, user)

    async def get_hours(self, user: str) -> Decimal:
        """The viewer's watch time in hours."""
        return await self._number(GET_HOURS, user)

    async def get_rank(self, user: str) -> str:
        """The viewer's rank name, e.g. "Sergeant - Star 2"."""
        name = check_user(user, function=GET_RANK)
        msg = await self._call(GET_RANK, name)
        error = error_for(msg, function=GET_RANK, user=name)
        if error is not None:
            raise error
        if not isinstance(msg, str) or not msg.strip():
            raise unexpected(msg, function=GET_RANK, user=name)
        return msg.strip()

    def _points(self, points: object, function: str, *, allow_zero: bool = False) -> str:
        return check_points(
            points, allow_zero=allow_zero, function=function, whole=self.whole_points
        )

    async def set_points(self, user: str, points: Decimal | int | float | str) -> None:
        """Set the balance to ``points`` (zero allowed)."""
        name = check_user(user, function=SET_POINTS)
        amount = self._points(points, SET_POINTS, allow_zero=True)
        await self._change(SET_POINTS, name, amount)

    async def add_points(self, user: str, points: Decimal | int | float | str) -> None:
        """Add a positive amount to the balance."""
        name = check_user(user, function=ADD_POINTS)
        amount = self._points(points, ADD_POINTS)
        await self._change(ADD_POINTS, name, amount)

    async def del_points(
        self,
        user: str,
        points: Decimal | int | float | str,
        *,
        fail_if_insufficient: bool = True,
    ) -> None:
        """Take a positive amount from the balance.

        DeepBot's third argument decides what happens when the viewer has less: ``False``
        (what DeepBot assumes) answers success and sets the balance to 0; ``True`` refuses.
        This client sends ``True`` unless told otherwise, and callers that move points check
        the balance first as well: one refusal is not something to rely on.
        """
        name = check_user(user, function=DEL_POINTS)
        amount = self._points(points, DEL_POINTS)
        flag = "True" if fail_if_insufficient else "False"
        await self._change(DEL_POINTS, name, amount, flag)

    async def add_to_escrow(self, user: str, points: Decimal | int | float | str) -> None:
        """Move a positive amount from the balance into escrow (held, not spendable)."""
        name = check_user(user, function=ADD_TO_ESCROW)
        amount = self._points(points, ADD_TO_ESCROW)
        await self._change(ADD_TO_ESCROW, name, amount)

    async def commit_user_escrow(self, user: str) -> None:
        """Consume everything the viewer holds in escrow."""
        name = check_user(user, function=COMMIT_USER_ESCROW)
        await self._change(COMMIT_USER_ESCROW, name)

    async def cancel_escrow(self, user: str) -> None:
        """Return the viewer's escrow to their balance; ``"all"`` does it for every viewer."""
        name = check_user(user, function=CANCEL_ESCROW)
        if name.lower() == ALL_USERS:
            name = ALL_USERS
        await self._change(CANCEL_ESCROW, name)

    async def cancel_all_escrow(self) -> None:
        """Return every viewer's escrow to their balance."""
        await self._change(CANCEL_ESCROW, ALL_USERS)

    async def set_vip(self, user: str, level: int, days: int) -> None:
        """Set the VIP level (0/10 normal, 1 bronze, 2 silver, 3 gold) and add ``days``."""
        name = check_user(user, function=SET_VIP)
        await self._change(SET_VIP, name, check_vip_level(level), check_vip_days(days))

    async def set_vip_expiry(self, user: str, expiry: datetime) -> None:
        """Set when the viewer's VIP ends, as DeepBot.cs sends it (``yyyy-MM-ddTHH:mm:ss``,
        DeepBot's local time: an aware ``expiry`` is sent as its own wall-clock time)."""
        name = check_user(user, function=SET_VIP_EXPIRY)
        if not isinstance(expiry, datetime) or not 2000 <= expiry.year <= 9998:
            raise InvalidArgument(
                "The VIP expiry must be a date between 2000 and 9998.", function=SET_VIP_EXPIRY
            )
        await self._change(SET_VIP_EXPIRY, name, expiry.strftime("%Y-%m-%dT%H:%M:%S"))

    # --- lists (beyond the document; both public clients use them) ------------------------

    async def _page(self, function: str, offset: int, limit: int) -> list[DeepBotUser]:
        if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset < 2**31:
            raise InvalidArgument("The offset must be a whole number, zero or more.")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= PAGE_LIMIT:
            raise InvalidArgument(f"A page holds 1 to {PAGE_LIMIT} viewers.", function=function)
        msg = await self._call(function, str(offset), str(limit))
        if isinstance(msg, str) and msg.strip().lower() == MSG_LIST_EMPTY.lower():
            return []
        users = parse_users(msg, limit=limit)
        if users is None:
            raise unexpected(msg, function=function, user="")
        return users

    async def get_users(self, offset: int = 0, limit: int = PAGE_LIMIT) -> list[DeepBotUser]:
        """One page of viewers in DeepBot's order; ``[]`` past the end ("List empty")."""
        return await self._page(GET_USERS, offset, limit)

    async def get_top_users(self, offset: int = 0, limit: int = PAGE_LIMIT) -> list[DeepBotUser]:
        """One page of viewers with the most points first; ``[]`` past the end."""
        return await self._page(GET_TOP_USERS, offset, limit)

    async def get_users_count(self) -> int:
        """How many viewers DeepBot knows."""
        msg = await self._call(GET_USERS_COUNT, "")
        number = parse_number(msg)
        if number is None or number < 0 or number != number.to_integral_value():
            raise unexpected(msg, function=GET_USERS_COUNT, user="")
        return int(number)

    # --- locks ---------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def viewer_lock(self, *users: str) -> AsyncIterator[None]:
        """Hold the named viewers for the duration of the block (in a fixed order, so two
        holders of the same pair never deadlock).

        A ``give`` reads balances, then moves points and checks them again: another move of
        the same viewers in between would make those checks lie. Not reentrant.
        """
        async with contextlib.AsyncExitStack() as stack:
            for key in sorted({user.lower() for user in users}):
                await stack.enter_async_context(self._lock(key))
            yield

    @contextlib.asynccontextmanager
    async def escrow_guard(self, user: str) -> AsyncIterator[None]:
        """Hold the viewer's escrow for the duration of the block (admin escrow commands);
        the same lock as :meth:`viewer_lock`."""
        async with self._lock(user.lower()):
            yield

    @contextlib.asynccontextmanager
    async def _lock(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users > 1:
                self._locks[key] = (lock, users - 1)
            else:
                del self._locks[key]
