"""ChatWars payments and payouts in the core ledger: the statuses and the allowed moves.

The ledger row is written *before* anything is sent and its transactionId is the one every
retry uses, so the game refuses a second execution (``DuplicateTransaction``) and nobody is
paid twice. Everything here is synchronous bookkeeping with no network; the flows that talk
to the game are in ``payments.py``.

Statuses (column ``status``; ``result`` keeps the API's last result code, or ``Timeout`` /
``NotConnected``):

=============  ==============================================================================
pending        written; authorizePayment or payout sent (or about to be), no answer yet. A
               payment stays here if authorizePayment timed out (the player may have a code).
authorized     payment only: the hold is placed and the player got a confirmation code.
paying         payment only: ``pay`` sent with the player's code, no answer yet.
unknown        a money-moving request timed out, or the bot stopped while it was in flight
               (result ``Interrupted``): it may or may not have happened. A late reply
               settles it; a retry with the same transactionId settles it too.
done           the money moved (Ok, or DuplicateTransaction for a retry: the first went).
failed         the game refused (``result`` says why) or nothing could be sent.
expired        payment only: not confirmed within ``payment_expiry`` seconds.
cancelled      payment only: the player cancelled it before confirming.
=============  ==============================================================================

"Ok is the truth": a reply saying the money moved makes the row ``done`` from any status,
even one we had given up on, because the ledger must say what really happened.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .errors import (
    DUPLICATE_TRANSACTION,
    SERVICE,
    AuthorizationFailed,
    ChatWarsError,
    DuplicateTransaction,
    ProtocolError,
)
from .models import BuyOrderPlaced, PaymentAuthorized, PaymentDone, PayoutDone
from .requests import AuthorizePayment, Pay, Payout, Reply, Request, WantToBuy

if TYPE_CHECKING:
    from bot.store import LedgerEntry, Store

log = logging.getLogger(__name__)


class Status(enum.StrEnum):
    PENDING = "pending"
    AUTHORIZED = "authorized"
    PAYING = "paying"
    UNKNOWN = "unknown"
    DONE = "done"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class Kind(enum.StrEnum):
    PAYMENT = "payment"
    PAYOUT = "payout"
    #: a wantToBuy exchange order: ``amount`` is the most gold it may spend (quantity times
    #: the highest price), ``message`` says what was ordered
    BUY = "buy"


FINAL = frozenset({Status.DONE, Status.FAILED, Status.EXPIRED, Status.CANCELLED})
#: a payment in these may still get a confirmation code
AWAITING_CODE = frozenset({Status.PENDING, Status.AUTHORIZED})
#: the outcome of a sent request is not known yet
IN_DOUBT = frozenset({Status.PENDING, Status.PAYING, Status.UNKNOWN})
ANY = frozenset(Status)

#: result codes we record for what did not come from the game (a timeout, no connection, the
#: bot stopped while the request was in flight)
TIMEOUT = "Timeout"
NOT_CONNECTED = "NotConnected"
INTERRUPTED = "Interrupted"
#: the plugin's table of payouts sent again (migrations/chatwars.py)
RETRIES = "chatwars_payout_retries"


def result_code(outcome: Any) -> str:
    """The API's result code of an outcome (a typed result means Ok)."""
    if isinstance(outcome, ChatWarsError):
        return outcome.code or type(outcome).__name__
    return "Ok"


class PaymentLedger:
    """The plugin's view of the core ledger (service ``chatwars``)."""

    def __init__(
        self,
        store: Store,
        *,
        payment_expiry: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.payment_expiry = payment_expiry
        self._clock = clock

    # ------------------------------------------------------------------ rows

    def open(
        self,
        kind: Kind,
        *,
        platform: str,
        user_id: str,
        telegram_id: int,
        pouches: int,
        transaction_id: str,
        message: str | None = None,
    ) -> LedgerEntry:
        """Write the row before anything is sent; its id is the one every retry uses.
        (``pouches``: for a buy, the most gold it may spend.)"""
        return self.store.ledger_create(
            service=SERVICE,
            kind=kind.value,
            platform=platform,
            user_id=user_id,
            account=str(telegram_id),
            amount=pouches,
            message=message,
            transaction_id=transaction_id,
        )

    def get(self, transaction_id: str) -> LedgerEntry | None:
        entry = self.store.ledger_get(transaction_id)
        return entry if entry is not None and entry.service == SERVICE else None

    def move(
        self, transaction_id: str, allowed_from: Iterable[Status], **fields: Any
    ) -> LedgerEntry | None:
        """Update the row only if its status is one of ``allowed_from`` (compare and set).

        Returns the updated row, or None when the row moved on meanwhile (a late reply or the
        expiry job got there first) and nothing was changed.
        """
        allowed = {Status(s).value for s in allowed_from}
        if "status" in fields:
            fields["status"] = Status(fields["status"]).value
        with self.store.transaction():
            entry = self.store.ledger_get(transaction_id)
            if entry is None or entry.status not in allowed:
                return None
            return self.store.ledger_update(transaction_id, **fields)

    def find(self, prefix: str) -> list[LedgerEntry]:
        """Rows whose transaction id starts with ``prefix`` (chat shows the first 8 chars)."""
        prefix = prefix.strip().lower()
        if not prefix or any(c in prefix for c in "%_\\"):
            return []
        rows = self.store.conn.execute(
            "select transaction_id from ledger where service = ? and lower(transaction_id) "
            "like ? order by created desc limit 5",
            (SERVICE, prefix + "%"),
        ).fetchall()
        return [e for (tid,) in rows if (e := self.get(tid)) is not None]

    def entries(
        self, *, platform: str | None = None, user_id: str | None = None, limit: int = 10
    ) -> list[LedgerEntry]:
        return self.store.ledger_entries(SERVICE, platform=platform, user_id=user_id, limit=limit)

    # ------------------------------------------------------------------ payments

    def is_stale(self, entry: LedgerEntry) -> bool:
        """A payment waiting for its code longer than ``payment_expiry``."""
        return self._clock() - entry.created >= self.payment_expiry

    def open_payment(self, platform: str, user_id: str) -> LedgerEntry | None:
        """The caller's newest payment that ``cw confirm`` would complete, if any.

        Payments waiting for their code count while not stale; ones whose ``pay`` is in
        doubt count at any age, because confirming again settles them safely.
        """
        for entry in self.store.ledger_entries(
            SERVICE, platform=platform, user_id=user_id, limit=50
        ):
            if entry.kind != Kind.PAYMENT or entry.status in FINAL:
                continue
            if entry.status in AWAITING_CODE and self.is_stale(entry):
                continue
            return entry
        return None

    def expire_stale(self) -> list[LedgerEntry]:
        """Mark payments never confirmed in time as expired; returns the rows it changed."""
        changed = []
        for status in AWAITING_CODE:
            for entry in self.store.ledger_entries(SERVICE, status=status.value, limit=500):
                if entry.kind == Kind.PAYMENT and self.is_stale(entry):
                    moved = self.move(entry.transaction_id, AWAITING_CODE, status=Status.EXPIRED)
                    if moved is not None:
                        changed.append(moved)
        return changed

    def mark_interrupted(self) -> list[LedgerEntry]:
        """At start-up nothing of ours is in flight: a payout still ``pending`` or a payment
        still ``paying`` was interrupted (the bot stopped or crashed) after it may have been
        sent. They become ``unknown``, for health to report and ``cw retry`` / ``cw confirm``
        to settle with their own transactionId."""
        changed = []
        for kind, status in (
            (Kind.PAYOUT, Status.PENDING),
            (Kind.PAYMENT, Status.PAYING),
            (Kind.BUY, Status.PENDING),
        ):
            for entry in self.store.ledger_entries(SERVICE, status=status.value, limit=1000):
                if entry.kind == kind:
                    moved = self.move(
                        entry.transaction_id, {status}, status=Status.UNKNOWN, result=INTERRUPTED
                    )
                    if moved is not None:
                        changed.append(moved)
        return changed

    def mark_retried(self, transaction_id: str) -> None:
        """Record that this payout is being sent again (before it goes out)."""
        self.store.conn.execute(
            f"insert into {RETRIES} (transaction_id, tries, at) values (?, 1, ?) "
            "on conflict(transaction_id) do update set tries = tries + 1, at = excluded.at",
            (transaction_id, self._clock()),
        )

    def was_retried(self, transaction_id: str) -> bool:
        row = self.store.conn.execute(
            f"select 1 from {RETRIES} where transaction_id = ?", (transaction_id,)
        ).fetchone()
        return row is not None

    def unresolved_payouts(self) -> int:
        """Payouts whose outcome is not known (for health: an admin should look)."""
        row = self.store.conn.execute(
            "select count(*) from ledger where service = ? and kind = ? and status = ?",
            (SERVICE, Kind.PAYOUT.value, Status.UNKNOWN.value),
        ).fetchone()
        return int(row[0])

    # ------------------------------------------------------------------ late replies

    def apply_stray(self, reply: Reply) -> LedgerEntry | None:
        """Settle a payout from a reply that matched nothing in flight (client hook).

        The answer to a payout sent before a restart (or after its grace ended) still
        arrives; it names only the player. It settles that player's one payout whose outcome
        is unknown; with several, it could belong to any of them and settles nothing. A
        refusal never fails a payout that was retried (an earlier try may have gone).
        """
        if reply.action not in ("payout", None) or reply.user_id is None:
            return None
        rows = self.store.conn.execute(
            "select transaction_id from ledger where service = ? and kind = ? and account = ? "
            "and status = ?",
            # Only unknown rows: a pending one may be waiting for its own reply right now.
            (SERVICE, Kind.PAYOUT.value, str(reply.user_id), Status.UNKNOWN.value),
        ).fetchall()
        if reply.action is None and reply.result != DUPLICATE_TRANSACTION:
            return None  # without an action only a DuplicateTransaction is surely a payout's
        if reply.transaction_id is not None:
            rows = [r for r in rows if r[0] == reply.transaction_id]
        if len(rows) != 1:
            if rows:
                log.warning(
                    "ChatWars ledger: a stray payout reply for user %s could answer %d payouts; "
                    "left unknown",
                    reply.user_id,
                    len(rows),
                )
            return None
        (transaction_id,) = rows[0]
        if reply.ok or reply.result == DUPLICATE_TRANSACTION:
            moved = self.move(transaction_id, IN_DOUBT, status=Status.DONE, result=reply.result)
        elif self.was_retried(transaction_id):
            moved = self.move(transaction_id, IN_DOUBT, status=Status.UNKNOWN, result=reply.result)
        else:
            moved = self.move(transaction_id, IN_DOUBT, status=Status.FAILED, result=reply.result)
        if moved is not None:
            log.info(
                "ChatWars ledger: a reply after the request's wait settled payout %s: %s -> %s",
                transaction_id,
                reply.result,
                moved.status,
            )
        return moved

    def apply_late(self, request: Request[Any], outcome: Any) -> LedgerEntry | None:
        """Record the reply to a request whose caller had stopped waiting (client hook).

        This is how a payout that timed out ends up ``done`` or ``failed`` in the ledger.
        """
        transaction_id = request.transaction_id
        if transaction_id is None or self.get(transaction_id) is None:
            return None
        code = result_code(outcome)
        moved: LedgerEntry | None = None
        if isinstance(request, Payout):
            if isinstance(outcome, PayoutDone | DuplicateTransaction | ProtocolError):
                moved = self.move(
                    transaction_id, ANY - {Status.DONE}, status=Status.DONE, result=code
                )
            elif isinstance(outcome, ChatWarsError) and (
                request.retry or self.was_retried(transaction_id)
            ):
                # Replies name only the player, so this refusal may answer a retry while an
                # earlier try went through: it never marks the payout failed.
                moved = self.move(transaction_id, IN_DOUBT, status=Status.UNKNOWN, result=code)
            elif isinstance(outcome, ChatWarsError):
                moved = self.move(transaction_id, IN_DOUBT, status=Status.FAILED, result=code)
        elif isinstance(request, WantToBuy):
            # Never re-sent, so its one reply is the truth either way.
            if isinstance(outcome, BuyOrderPlaced | ProtocolError):
                moved = self.move(transaction_id, IN_DOUBT, status=Status.DONE, result=code)
            elif isinstance(outcome, ChatWarsError):
                moved = self.move(transaction_id, IN_DOUBT, status=Status.FAILED, result=code)
        elif isinstance(request, AuthorizePayment):
            if isinstance(outcome, PaymentAuthorized):
                moved = self.move(
                    transaction_id,
                    {Status.PENDING},
                    status=Status.AUTHORIZED,
                    fee=outcome.fee_gold,
                    debit=outcome.debit_gold,
                    result=code,
                )
            elif isinstance(outcome, ChatWarsError) and not isinstance(
                outcome, DuplicateTransaction
            ):
                moved = self.move(
                    transaction_id, {Status.PENDING}, status=Status.FAILED, result=code
                )
        elif isinstance(request, Pay):
            if isinstance(outcome, PaymentDone):
                moved = self.move(
                    transaction_id,
                    ANY - {Status.DONE},
                    status=Status.DONE,
                    fee=outcome.fee_gold,
                    debit=outcome.debit_gold,
                    result=code,
                )
            elif isinstance(outcome, DuplicateTransaction | ProtocolError):
                moved = self.move(
                    transaction_id, ANY - {Status.DONE}, status=Status.DONE, result=code
                )
            elif isinstance(outcome, AuthorizationFailed):
                # A wrong or stale code: the player may still confirm with the right one.
                moved = self.move(
                    transaction_id,
                    {Status.PAYING, Status.UNKNOWN},
                    status=Status.AUTHORIZED,
                    result=code,
                )
            elif isinstance(outcome, ChatWarsError):
                moved = self.move(
                    transaction_id,
                    {Status.PAYING, Status.UNKNOWN},
                    status=Status.FAILED,
                    result=code,
                )
        if moved is not None:
            log.info(
                "ChatWars ledger: late %s reply for %s: %s -> %s",
                request.action,
                transaction_id,
                code,
                moved.status,
            )
        return moved
