"""Moving points between viewers through DeepBot's escrow: what ``give`` is built on.

Escrow the giver's points, add them to the receiver, commit the escrow. When DeepBot
*refuses* a step the earlier ones are undone (the escrow is cancelled, so the giver gets the
points back). When DeepBot's answer is *unknown* (a timeout or a lost connection) nothing is
undone: undoing a step that did happen would create or destroy points, and points must never
move twice. The error then says what is held for whom, for an admin to commit or cancel.

Only the client's public calls are used; :meth:`DeepBotClient.transfer` validates the
arguments and serialises transfers per giver before calling :func:`run_transfer`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, NoReturn

from .errors import (
    ConnectionLost,
    DeepBotError,
    DeepBotNotConnected,
    DeepBotTimeout,
    NoPointsInEscrow,
    TransferFailed,
    TransferIncomplete,
)
from .protocol import ADD_POINTS, CANCEL_ESCROW, COMMIT_USER_ESCROW

if TYPE_CHECKING:
    from .client import DeepBotClient

log = logging.getLogger(__name__)


async def run_transfer(client: DeepBotClient, giver: str, receiver: str, amount: str) -> None:
    """Move ``amount`` (validated decimal text) from ``giver`` to ``receiver``."""
    try:
        await client.add_to_escrow(giver, amount)
    except (DeepBotTimeout, ConnectionLost) as exc:
        await _settle_unknown_escrow(client, giver, exc)
        raise
    try:
        await client.add_points(receiver, amount)
    except (DeepBotTimeout, ConnectionLost) as exc:
        raise TransferIncomplete(
            f"DeepBot did not confirm adding {amount} points to {receiver}; "
            f"{giver}'s {amount} points stay held in escrow until an admin commits "
            "or cancels it.",
            code=exc.code,
            function=ADD_POINTS,
            user=receiver,
        ) from exc
    except DeepBotError as exc:
        await _refund(client, giver, amount, exc)
    try:
        await client.commit_user_escrow(giver)
    except (DeepBotTimeout, DeepBotNotConnected) as exc:
        await _retry_commit(client, giver, receiver, amount, exc)
    except DeepBotError as exc:
        raise TransferIncomplete(
            f"{receiver} received {amount} points but DeepBot did not commit "
            f"{giver}'s escrow ({exc.message}); an admin should check both balances.",
            code=exc.code,
            function=COMMIT_USER_ESCROW,
            user=giver,
        ) from exc


async def _settle_unknown_escrow(client: DeepBotClient, giver: str, cause: DeepBotError) -> None:
    # The escrow may or may not have happened; nothing was given yet, so returning whatever
    # is held is right. Best effort: the caller re-raises the original error either way.
    try:
        await client.wait_connected(client.timeout)
        await client.cancel_escrow(giver)
    except DeepBotError as exc:
        log.warning("Could not cancel %s's escrow after %s: %s", giver, cause.code, exc.code)


async def _refund(client: DeepBotClient, giver: str, amount: str, cause: DeepBotError) -> NoReturn:
    try:
        await client.wait_connected(client.timeout)
        await client.cancel_escrow(giver)
    except DeepBotError as exc:
        raise TransferIncomplete(
            f"{cause.message} The {amount} points held from {giver} could not be "
            "returned; an admin should cancel the escrow.",
            code=exc.code,
            function=CANCEL_ESCROW,
            user=giver,
        ) from cause
    raise TransferFailed(
        f"{cause.message} The {amount} points went back to {giver}.",
        code=cause.code,
        function=cause.function,
        user=cause.user,
        refunded=True,
    ) from cause


async def _retry_commit(
    client: DeepBotClient, giver: str, receiver: str, amount: str, cause: DeepBotError
) -> None:
    # Committing twice is harmless: "No points in escrow" means the first commit landed.
    try:
        await client.wait_connected(client.timeout)
        await client.commit_user_escrow(giver)
    except NoPointsInEscrow:
        return
    except DeepBotError as exc:
        raise TransferIncomplete(
            f"{receiver} received {amount} points but committing {giver}'s escrow was "
            "not confirmed; an admin should commit it.",
            code=exc.code,
            function=COMMIT_USER_ESCROW,
            user=giver,
        ) from cause
