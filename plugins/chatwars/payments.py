"""The money flows: a player's payment (authorize, then pay with their code) and a payout.

Each flow writes its ledger row before the first request goes out and moves it through the
statuses documented in ``ledger.py`` as answers come in. A timeout never counts as "not
done": the row becomes ``unknown`` (or stays ``pending``), a retry reuses the same
transactionId, and a late reply settles it through :meth:`PaymentLedger.apply_late`.

The chat layer gets typed outcomes back and errors whose messages it can show as they are.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.errors import UserError

from .errors import (
    AuthorizationFailed,
    BattleIsNear,
    ChatWarsError,
    ChatWarsNotConnected,
    ChatWarsTimeout,
    DuplicateTransaction,
    InvalidRequest,
    ProtocolError,
    TryAgain,
    UserIsBusy,
)
from .ledger import AWAITING_CODE, IN_DOUBT, NOT_CONNECTED, TIMEOUT, Kind, PaymentLedger, Status
from .models import BuyOrderPlaced, PaymentAuthorized, UserToken
from .replies import pouches
from .requests import AuthorizePayment, Pay, Payout, WantToBuy

if TYPE_CHECKING:
    from bot.store import LedgerEntry

    from .client import ChatWarsClient

#: wrong confirmation codes accepted before a payment is given up
MAX_CODE_ATTEMPTS = 3
#: refusals that mean "not now": the same request (same transactionId) may be sent again
TRANSIENT = (TryAgain, UserIsBusy, BattleIsNear)
TRANSIENT_CODES = frozenset(cls.result for cls in TRANSIENT)


class PaymentInDoubt(UserError):
    """A money request was sent and not answered: it may have happened. Nothing is lost:
    the ledger row says ``unknown`` and retrying with the same id cannot pay twice."""

    def __init__(self, message: str, entry: LedgerEntry) -> None:
        super().__init__(message)
        self.entry = entry


@dataclass(frozen=True, slots=True)
class PaymentStarted:
    entry: LedgerEntry
    authorized: PaymentAuthorized


@dataclass(frozen=True, slots=True)
class Settled:
    """A payment or payout that is done; ``duplicate`` when a retry proved it had gone."""

    entry: LedgerEntry
    duplicate: bool = False


class MoneyFlows:
    """Payments and payouts for one running plugin (its client and the ledger)."""

    def __init__(
        self, client: ChatWarsClient, ledger: PaymentLedger, *, payout_attempts: int = 1
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.payout_attempts = max(1, payout_attempts)
        self._locks: weakref.WeakValueDictionary[tuple[str, str], asyncio.Lock] = (
            weakref.WeakValueDictionary()
        )
        self._code_attempts: dict[str, int] = {}

    def lock(self, platform: str, user_id: str) -> asyncio.Lock:
        """One money flow per chat user at a time: a confirmation code must find the
        payment it belongs to, not one started a moment later."""
        key = (platform, str(user_id))
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    # ------------------------------------------------------------------ payments

    async def start_payment(
        self, platform: str, user_id: str, user: UserToken, pouches: int, *, prefix: str = "!"
    ) -> PaymentStarted:
        """Write the row, then authorizePayment: the game sends the player a code."""
        async with self.lock(platform, user_id):
            waiting = self.ledger.open_payment(platform, user_id)
            if waiting is not None and not self.ledger.is_stale(waiting):
                # One at a time: a code must find its own payment. An old payment whose
                # outcome is still unknown does not block a new one for ever.
                raise UserError(_still_open(waiting, prefix))
            transaction_id = self.client.new_transaction_id()
            request = AuthorizePayment(user, pouches, transaction_id)  # refuses bad input
            entry = self.ledger.open(
                Kind.PAYMENT,
                platform=platform,
                user_id=user_id,
                telegram_id=user.user_id,
                pouches=pouches,
                transaction_id=transaction_id,
            )
            try:
                authorized = await self.client.call(request)
            except ChatWarsTimeout:
                self.ledger.move(transaction_id, {Status.PENDING}, result=TIMEOUT)
                raise UserError(
                    "ChatWars did not answer in time. If the ChatWars bot sends you a "
                    f"confirmation code anyway, confirm with {prefix}cw confirm <code>; "
                    "otherwise the payment expires by itself."
                ) from None
            except ChatWarsNotConnected:
                self.ledger.move(
                    transaction_id, {Status.PENDING}, status=Status.FAILED, result=NOT_CONNECTED
                )
                raise
            except ChatWarsError as exc:
                self.ledger.move(
                    transaction_id, {Status.PENDING}, status=Status.FAILED, result=exc.code
                )
                raise
            moved = self.ledger.move(
                transaction_id,
                {Status.PENDING},
                status=Status.AUTHORIZED,
                fee=authorized.fee_gold,
                debit=authorized.debit_gold,
                result="Ok",
            )
            return PaymentStarted(moved or entry, authorized)

    async def confirm_payment(
        self, platform: str, user_id: str, user: UserToken, code: str, *, prefix: str = "!"
    ) -> Settled:
        """``pay`` the caller's open payment with the code and the row's transactionId."""
        async with self.lock(platform, user_id):
            entry = self.ledger.open_payment(platform, user_id)
            if entry is None:
                raise UserError(
                    "You have no payment waiting for a confirmation code. "
                    f"Start one with {prefix}cw pay <pouches>."
                )
            if int(entry.account) != user.user_id:
                raise UserError(
                    "That payment was started from another ChatWars account; it expires by itself."
                )
            transaction_id = entry.transaction_id
            request = Pay(user, entry.amount, code, transaction_id)  # refuses a malformed code
            before = Status(entry.status)
            if self.ledger.move(transaction_id, {before}, status=Status.PAYING) is None:
                raise UserError("That payment changed meanwhile; please try again.")
            try:
                done = await self.client.call(request)
            except DuplicateTransaction:
                return Settled(self._done(transaction_id, "DuplicateTransaction"), True)
            except ProtocolError:
                # Only an Ok reply can be unreadable: the pouches moved.
                return Settled(self._done(transaction_id, "Ok"))
            except ChatWarsTimeout:
                moved = self.ledger.move(
                    transaction_id, {Status.PAYING}, status=Status.UNKNOWN, result=TIMEOUT
                )
                raise PaymentInDoubt(
                    "ChatWars did not answer in time, so the payment may or may not have gone "
                    f"through. Send {prefix}cw confirm <code> again to find out: it cannot "
                    "be charged twice.",
                    moved or entry,
                ) from None
            except ChatWarsNotConnected:
                self.ledger.move(transaction_id, {Status.PAYING}, status=before)
                raise
            except ChatWarsError as exc:
                raise self._pay_refused(exc, entry, before, prefix) from None
            self._code_attempts.pop(transaction_id, None)
            moved = self.ledger.move(
                transaction_id,
                {Status.PAYING},
                status=Status.DONE,
                fee=done.fee_gold,
                debit=done.debit_gold,
                result="Ok",
            )
            return Settled(moved or self._done(transaction_id, "Ok"))

    def _pay_refused(
        self, exc: ChatWarsError, entry: LedgerEntry, before: Status, prefix: str
    ) -> ChatWarsError | UserError:
        """Record a refused ``pay`` and word it. A payment whose earlier ``pay`` is in doubt
        is never marked failed on a refusal: that earlier one may have gone through."""
        transaction_id = entry.transaction_id
        in_doubt = before not in AWAITING_CODE
        if in_doubt or isinstance(exc, TRANSIENT):
            self.ledger.move(transaction_id, {Status.PAYING}, status=before, result=exc.code)
            return UserError(
                f"{exc.message} Your payment is still open: send {prefix}cw confirm <code> "
                "again (it cannot be charged twice)."
            )
        if isinstance(exc, AuthorizationFailed):
            tries = self._code_attempts.get(transaction_id, 0) + 1
            self._code_attempts[transaction_id] = tries
            if tries < MAX_CODE_ATTEMPTS and not self.ledger.is_stale(entry):
                self.ledger.move(transaction_id, {Status.PAYING}, status=before, result=exc.code)
                left = MAX_CODE_ATTEMPTS - tries
                return UserError(
                    f"{exc.message} Check the code and try again ({left} more "
                    f"{'try' if left == 1 else 'tries'})."
                )
            self._code_attempts.pop(transaction_id, None)
            self.ledger.move(transaction_id, {Status.PAYING}, status=Status.FAILED, result=exc.code)
            return UserError(
                f"{exc.message} The payment is cancelled; start a new one with "
                f"{prefix}cw pay <pouches> if you still want to pay."
            )
        self.ledger.move(transaction_id, {Status.PAYING}, status=Status.FAILED, result=exc.code)
        return exc

    def cancel_payment(self, platform: str, user_id: str) -> LedgerEntry | None:
        """Cancel the caller's payment still waiting for its code (no money has moved)."""
        entry = self.ledger.open_payment(platform, user_id)
        if entry is None or entry.status not in AWAITING_CODE:
            return None
        return self.ledger.move(entry.transaction_id, AWAITING_CODE, status=Status.CANCELLED)

    def _done(self, transaction_id: str, result: str) -> LedgerEntry:
        """The money moved: done from any status (a late Ok may find it failed or expired)."""
        moved = self.ledger.move(
            transaction_id, set(Status) - {Status.DONE}, status=Status.DONE, result=result
        )
        return moved or self._row(transaction_id)

    def _row(self, transaction_id: str) -> LedgerEntry:
        entry = self.ledger.get(transaction_id)
        if entry is None:  # rows are never deleted; this would be a bug elsewhere
            raise LookupError(f"ledger row {transaction_id} is missing")
        return entry

    # ------------------------------------------------------------------ payouts

    async def payout(
        self,
        platform: str,
        user_id: str,
        user: UserToken,
        pouches: int,
        message: str = "",
        *,
        prefix: str = "!",
        transaction_id: str | None = None,
    ) -> Settled:
        """Write the row, then send the payout once (``payout_attempts`` > 1 re-sends a
        timeout with the same id; the default never re-sends by itself).

        ``transaction_id`` comes from the command's id when it has one: a payout command
        the cluster runs again after a crash finds the row its first run wrote and sends
        nothing (done: it is reported paid; otherwise ``cw retry`` decides).
        """
        if transaction_id is not None:
            earlier = self.ledger.get(transaction_id)
            if earlier is not None:
                if earlier.status == Status.DONE:
                    return Settled(earlier)
                raise UserError(
                    f"This command already started payout {transaction_id[:8]} "
                    f"({earlier.status}); nothing was sent again. If it stays unknown, "
                    f"{prefix}cw retry {transaction_id[:8]} checks the balance first."
                )
        transaction_id = transaction_id or self.client.new_transaction_id()
        text = (message or "").strip()
        request = Payout(user, pouches, transaction_id, text)  # refuses bad input
        self.ledger.open(
            Kind.PAYOUT,
            platform=platform,
            user_id=user_id,
            telegram_id=user.user_id,
            pouches=pouches,
            transaction_id=transaction_id,
            message=text or None,
        )
        return await self.send_payout(request, prefix=prefix, in_doubt=False)

    async def retry_payout(
        self, entry: LedgerEntry, user: UserToken, *, prefix: str = "!"
    ) -> Settled:
        """Send a payout again with its own transactionId: it cannot be paid twice."""
        if entry.kind == Kind.PAYOUT and entry.status == Status.DONE:
            return Settled(entry)
        self.check_retry(entry, user, prefix=prefix)
        try:
            request = Payout(
                user,
                entry.amount,
                entry.transaction_id,
                entry.message or "",
                retry=entry.status in IN_DOUBT,
            )
        except InvalidRequest as exc:  # pragma: no cover - it was valid when written
            raise UserError(exc.message) from None
        if request.retry:
            self.ledger.mark_retried(entry.transaction_id)
        return await self.send_payout(request, prefix=prefix, in_doubt=entry.status in IN_DOUBT)

    @staticmethod
    def check_retry(entry: LedgerEntry, user: UserToken, *, prefix: str = "!") -> None:
        """Raise a UserError saying why this row cannot be sent again (nothing is sent)."""
        if entry.kind != Kind.PAYOUT:
            raise UserError("Only payouts can be retried; a payment is confirmed by its player.")
        retryable = entry.status in IN_DOUBT or (
            entry.status == Status.FAILED and entry.result in TRANSIENT_CODES
        )
        if not retryable:
            raise UserError(
                f"That payout is {entry.status} ({entry.result or 'no result'}); it cannot "
                f"be retried. Start a new one with {prefix}cw payout."
            )
        if int(entry.account) != user.user_id:
            raise UserError("That player has linked another ChatWars account since; not retried.")

    async def send_payout(self, request: Payout, *, prefix: str, in_doubt: bool) -> Settled:
        """Send (and on a timeout resend) one payout with its ledger row's transactionId.

        ``in_doubt``: an earlier attempt may have gone through, so a refusal now does not
        prove it failed, and the row stays ``unknown``.
        """
        transaction_id = request.txid
        short = transaction_id[:8]
        maybe_sent = in_doubt
        for _attempt in range(self.payout_attempts):
            try:
                await self.client.call(request)
            except DuplicateTransaction:
                return Settled(self._done(transaction_id, "DuplicateTransaction"), True)
            except ProtocolError:
                return Settled(self._done(transaction_id, "Ok"))
            except ChatWarsTimeout:
                maybe_sent = True
                self.ledger.move(transaction_id, IN_DOUBT, status=Status.UNKNOWN, result=TIMEOUT)
                # A re-send (only with payout_attempts > 1) is a retry of a payout in doubt.
                request = request.retried()
                self.ledger.mark_retried(transaction_id)
                continue
            except ChatWarsNotConnected:
                if not maybe_sent:
                    self.ledger.move(
                        transaction_id,
                        {Status.PENDING},
                        status=Status.FAILED,
                        result=NOT_CONNECTED,
                    )
                    raise
                break  # an earlier attempt may have gone out: in doubt, said below
            except ChatWarsError as exc:
                if maybe_sent:
                    entry = self.ledger.move(
                        transaction_id, IN_DOUBT, status=Status.UNKNOWN, result=exc.code
                    )
                    raise PaymentInDoubt(
                        f"{exc.message} An earlier attempt may have gone through, so the "
                        f"ledger keeps {short} as unknown; {prefix}cw retry {short} asks "
                        "again (it cannot be paid twice).",
                        entry or self._row(transaction_id),
                    ) from None
                self.ledger.move(
                    transaction_id,
                    IN_DOUBT | {Status.FAILED},
                    status=Status.FAILED,
                    result=exc.code,
                )
                if isinstance(exc, TRANSIENT):
                    raise UserError(
                        f"{exc.message} {prefix}cw retry {short} sends the same payout again "
                        "(it cannot be paid twice)."
                    ) from None
                raise
            return Settled(self._done(transaction_id, "Ok"))
        entry = self._row(transaction_id)
        if entry.status == Status.DONE:  # a late reply settled it meanwhile
            return Settled(entry)
        raise PaymentInDoubt(
            "ChatWars did not confirm the payout in time; it may or may not have gone "
            f"through. The ledger marks {short} as unknown and updates it when ChatWars "
            f"answers; {prefix}cw retry {short} sends it again safely (it cannot be paid "
            "twice).",
            entry,
        )


@dataclass(frozen=True, slots=True)
class BuyPlaced:
    entry: LedgerEntry
    order: BuyOrderPlaced | None


async def buy(
    flows: MoneyFlows,
    platform: str,
    user_id: str,
    user: UserToken,
    request: WantToBuy,
    description: str,
) -> BuyPlaced:
    """Write the row, then send the exchange order once (it spends the player's gold).

    The game takes no transactionId for wantToBuy, so a timeout is never re-sent: the row
    stays ``unknown`` until the late reply settles it.
    """
    ledger, transaction_id = flows.ledger, request.txid
    ledger.open(
        Kind.BUY,
        platform=platform,
        user_id=user_id,
        telegram_id=user.user_id,
        pouches=request.quantity * request.price,
        transaction_id=transaction_id,
        message=description,
    )
    try:
        order = await flows.client.call(request)
    except ProtocolError:
        # Only an Ok reply can be unreadable: the order was placed.
        return BuyPlaced(flows._done(transaction_id, "Ok"), None)
    except ChatWarsTimeout:
        entry = ledger.move(transaction_id, {Status.PENDING}, status=Status.UNKNOWN, result=TIMEOUT)
        raise PaymentInDoubt(
            "ChatWars did not answer in time, so the order may or may not have been placed. "
            "It is not sent again (that could buy twice): check your stock before buying "
            f"again. The ledger row {transaction_id[:8]} is updated when ChatWars answers.",
            entry or flows._row(transaction_id),
        ) from None
    except ChatWarsNotConnected:
        ledger.move(transaction_id, {Status.PENDING}, status=Status.FAILED, result=NOT_CONNECTED)
        raise
    except ChatWarsError as exc:
        ledger.move(transaction_id, {Status.PENDING}, status=Status.FAILED, result=exc.code)
        raise
    moved = ledger.move(transaction_id, {Status.PENDING}, status=Status.DONE, result="Ok")
    return BuyPlaced(moved or flows._done(transaction_id, "Ok"), order)


def _still_open(entry: LedgerEntry, prefix: str) -> str:
    if entry.status in AWAITING_CODE:
        return (
            f"You already have a payment of {pouches(entry.amount)} waiting for its "
            f"confirmation code: send {prefix}cw confirm <code>, or {prefix}cw cancel to "
            "drop it."
        )
    return (
        f"Your payment of {pouches(entry.amount)} has not been settled yet: send "
        f"{prefix}cw confirm <code> again with the same code to find out how it ended."
    )
