"""Every way a ChatWars call can fail, as exceptions the chat layer can show as they are.

Each result code of the API (the document's list, the ones seen in the wild, and the
simulator's ``DuplicateTransaction``) has its own class, so callers branch on the type rather
than on text, and each carries a sentence written for a player in chat. ``code`` keeps the
API's own result code; messages never include tokens, codes or the broker URL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from bot.errors import NotConnected, ServiceError, ServiceTimeout

SERVICE = "chatwars"

#: The result the simulator (and, we expect, the real server) gives a reused transactionId.
#: The document only says ids "must be unique"; see simulator.py for why this code was chosen.
DUPLICATE_TRANSACTION = "DuplicateTransaction"


class ChatWarsError(ServiceError):
    """Base of every ChatWars failure; ``code`` is the API's result code where there is one."""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        action: str | None = None,
        user_id: int | None = None,
    ) -> None:
        super().__init__(message, service=SERVICE, code=code)
        self.action = action
        self.user_id = user_id


class InvalidRequest(ChatWarsError):
    """We refused to send a request that breaks the API's rules (nothing was sent)."""


class ProtocolError(ChatWarsError):
    """The server said Ok but its answer lacks what the document promises."""

    def __init__(self, action: str | None, detail: str) -> None:
        super().__init__(
            "ChatWars sent an answer the bot could not read; please try again later.",
            code=None,
            action=action,
        )
        self.detail = detail


class ChatWarsTimeout(ServiceTimeout):
    """No reply in time. For payments the outcome is unknown: retry with the same id."""

    def __init__(self, action: str, timeout: float) -> None:
        super().__init__(
            f"ChatWars did not answer within {timeout:g} seconds; please try again.",
            service=SERVICE,
            code="Timeout",
        )
        self.action = action


class ChatWarsNotConnected(NotConnected):
    """The broker is unreachable right now; nothing was sent."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"ChatWars is not reachable right now ({reason}).", service=SERVICE)
        self.reason = reason


class ChatWarsNotSent(ChatWarsNotConnected):
    """The request waited its whole timeout without being sent (nothing reached ChatWars)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.message = f"ChatWars was not asked: {reason}. Please try again in a while."
        self.args = (self.message,)


class OperationRequestPending(ChatWarsError):
    """We already asked this player for this permission recently; asking again is spam.

    ``request`` is the earlier request (its code completes it) when we still know it.
    """

    def __init__(
        self, operation: str, user_id: int, retry_after: float, request: Any | None
    ) -> None:
        minutes = max(1, round(retry_after / 60))
        super().__init__(
            "ChatWars already sent you a request to allow this; reply with the code from that "
            f"message, or ask again in about {minutes} minute{'s' if minutes != 1 else ''}.",
            code=None,
            action="authAdditionalOperation",
            user_id=user_id,
        )
        self.operation = operation
        self.retry_after = retry_after
        self.request = request


class ResultError(ChatWarsError):
    """The API answered with a result other than Ok."""

    result: ClassVar[str] = ""
    default_message: ClassVar[str] = ""
    #: a better sentence for some actions (e.g. whose balance is too low)
    by_action: ClassVar[Mapping[str, str]] = {}

    def __init__(
        self,
        *,
        action: str | None = None,
        user_id: int | None = None,
        payload: Mapping[str, Any] | None = None,
        code: str | None = None,
    ) -> None:
        text = self.by_action.get(action or "", self.default_message)
        super().__init__(text, code=code or self.result, action=action, user_id=user_id)
        self.payload = dict(payload or {})


class BadAmount(ResultError):
    result = "BadAmount"
    default_message = "The amount must be more than zero."


class BadCurrency(ResultError):
    result = "BadCurrency"
    default_message = "ChatWars only accepts gold pouches for this."


class BadFormat(ResultError):
    result = "BadFormat"
    default_message = "ChatWars could not understand the request; please check what you typed."


class ActionNotFound(ResultError):
    result = "ActionNotFound"
    default_message = "ChatWars does not know this action; the bot may need an update."


class NoSuchUser(ResultError):
    result = "NoSuchUser"
    default_message = "ChatWars has no active player with that Telegram id."


class NotRegistered(ResultError):
    result = "NotRegistered"
    default_message = "This bot is not registered as a ChatWars app yet; tell the bot's owner."


class InvalidCode(ResultError):
    result = "InvalidCode"
    default_message = "That code is not right; check the code the ChatWars bot sent you."


class TryAgain(ResultError):
    result = "TryAgain"
    default_message = "ChatWars is having technical trouble; please try again in a moment."


class AuthorizationFailed(ResultError):
    result = "AuthorizationFailed"
    default_message = (
        "ChatWars refused the payment: the confirmation code is wrong, it expired, or the "
        "payment details do not match."
    )


class InsufficientFunds(ResultError):
    result = "InsufficientFunds"
    default_message = "There is not enough gold for this."
    by_action: ClassVar[Mapping[str, str]] = {
        "authorizePayment": "You do not have enough gold pouches in ChatWars for this payment.",
        "pay": "You do not have enough gold pouches in ChatWars for this payment.",
        "payout": "The bot's ChatWars balance is too low for this payout.",
    }


class InvalidToken(ResultError):
    result = "InvalidToken"
    default_message = (
        "Your ChatWars link is no longer valid (access was revoked); please link your account "
        "again."
    )


class Forbidden(ResultError):
    """The token lacks a permission; ``required_operation`` names what to ask the player for."""

    result = "Forbidden"
    default_message = "The bot needs your permission in ChatWars for this."

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        operation = self.payload.get("requiredOperation")
        self.required_operation: str | None = (
            operation if isinstance(operation, str) and operation else None
        )
        if self.required_operation:
            # Operation names are CamelCase words from the server; keep the sentence clean.
            shown = re.sub(r"[^A-Za-z0-9]", "", self.required_operation)[:40]
            self.message = f"The bot needs your permission in ChatWars for this ({shown})."
            self.args = (self.message,)


class NoSuchOperation(ResultError):
    result = "NoSuchOperation"
    default_message = "ChatWars does not know the permission the bot asked for."


class LevelIsLow(ResultError):
    result = "LevelIsLow"
    default_message = "Your ChatWars character's level is too low for this."


class NotInGuild(ResultError):
    result = "NotInGuild"
    default_message = "You need to be in a ChatWars guild for this."


class NoOffersFoundByPrice(ResultError):
    result = "NoOffersFoundByPrice"
    default_message = "ChatWars found no offers at that price."


class UserIsBusy(ResultError):
    result = "UserIsBusy"
    default_message = "Your ChatWars character is busy right now; please try again later."


class BattleIsNear(ResultError):
    result = "BattleIsNear"
    default_message = (
        "A battle is about to begin and ChatWars does not allow this now; try again after it."
    )


class DuplicateTransaction(ResultError):
    """The transactionId was used before: the earlier request was carried out, not this one.

    For a retried payment or payout this is the proof that the money moved exactly once.
    """

    result = DUPLICATE_TRANSACTION
    default_message = "ChatWars already processed this transaction; it was not carried out twice."


class UnknownResult(ResultError):
    """A result code this client does not know (the API is documented as unstable)."""

    default_message = "ChatWars refused the request."

    def __init__(self, *, code: str, **kwargs: Any) -> None:
        shown = re.sub(r"[^A-Za-z0-9]", "", code)[:40] or "unknown"
        super().__init__(code=shown, **kwargs)
        self.message = f"ChatWars refused the request ({shown})."
        self.args = (self.message,)


RESULT_ERRORS: dict[str, type[ResultError]] = {
    cls.result: cls
    for cls in (
        BadAmount,
        BadCurrency,
        BadFormat,
        ActionNotFound,
        NoSuchUser,
        NotRegistered,
        InvalidCode,
        TryAgain,
        AuthorizationFailed,
        InsufficientFunds,
        InvalidToken,
        Forbidden,
        NoSuchOperation,
        LevelIsLow,
        NotInGuild,
        NoOffersFoundByPrice,
        UserIsBusy,
        BattleIsNear,
        DuplicateTransaction,
    )
}


def error_for_result(
    result: str,
    *,
    action: str | None = None,
    user_id: int | None = None,
    payload: Mapping[str, Any] | None = None,
) -> ResultError:
    """The exception for a non-Ok result, unknown codes included."""
    cls = RESULT_ERRORS.get(result)
    if cls is None:
        return UnknownResult(code=result, action=action, user_id=user_id, payload=payload)
    return cls(action=action, user_id=user_id, payload=payload)
