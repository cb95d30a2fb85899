"""The API's actions as typed requests: what goes on the wire and how the answer is read.

Each request checks its own arguments against the document's rules before anything is sent
(positive amounts, the 100-symbol payout message, plain ids), so bad input from chat is refused
with :class:`InvalidRequest` and never reaches the game. Each also says how its reply can be
recognised (user id, token, transactionId), which the correlator uses: replies carry no id of
ours.
"""

from __future__ import annotations

import abc
import html
import json
import re
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from .errors import InvalidRequest, ProtocolError, error_for_result
from .models import (
    AppInfo,
    AuthCodeSent,
    BasicInfo,
    BuyOrderPlaced,
    Craftbook,
    Gear,
    GearItem,
    GrantedToken,
    GuildInfo,
    OperationGranted,
    OperationRequest,
    PaymentAuthorized,
    PaymentDone,
    PayoutDone,
    Profile,
    Recipe,
    Stock,
    UserToken,
)
from .parsing import (
    FormatProblem,
    as_int,
    as_list,
    as_mapping,
    as_str,
    optional_int,
    require,
)

R = TypeVar("R")

#: "arbitrary message, limit - 100 symbols" (payout); counted after HTML escaping.
PAYOUT_MESSAGE_LIMIT = 100
#: Not in the document: a sanity bound far above any balance, so a typo cannot ask for 10^20.
MAX_POUCHES = 1_000_000
#: Telegram user ids fit in 52 bits.
MAX_USER_ID = 2**52

_PLAIN_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_CODE = re.compile(r"[A-Za-z0-9]{1,32}")
_OPERATION = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
_TOKEN = re.compile(r"[!-~]{1,256}")  # printable ASCII, no spaces
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_user_id(user_id: int) -> int:
    if isinstance(user_id, bool) or not isinstance(user_id, int) or not 0 < user_id < MAX_USER_ID:
        raise InvalidRequest("A Telegram user id is a positive whole number.")
    return user_id


def check_code(code: str, what: str = "code") -> str:
    code = code.strip() if isinstance(code, str) else ""
    if not _CODE.fullmatch(code):
        raise InvalidRequest(f"The {what} must be the letters and digits the ChatWars bot sent.")
    return code


def check_pouches(pouches: int) -> int:
    if isinstance(pouches, bool) or not isinstance(pouches, int):
        raise InvalidRequest("The amount must be a whole number of gold pouches.")
    if pouches <= 0:
        raise InvalidRequest("The amount must be at least one gold pouch.")
    if pouches > MAX_POUCHES:
        raise InvalidRequest(f"The amount can be at most {MAX_POUCHES} gold pouches.")
    return pouches


def check_transaction_id(transaction_id: str) -> str:
    if not isinstance(transaction_id, str) or not _PLAIN_ID.fullmatch(transaction_id):
        raise InvalidRequest(
            "A transaction id is 1 to 64 letters, digits or '-', '_', '.', ':' characters."
        )
    return transaction_id


def check_user_token(user: UserToken) -> UserToken:
    if not isinstance(user, UserToken):
        raise InvalidRequest("This needs a linked ChatWars account.")
    check_user_id(user.user_id)
    if not isinstance(user.token, str) or not _TOKEN.fullmatch(user.token):
        raise InvalidRequest(
            "The stored ChatWars token is damaged; please link your account again."
        )
    return user


def payout_message(text: str) -> str:
    """The payout message as sent: HTML-escaped (the game parses it as HTML, and a bad tag
    means the player gets no message at all) and within the 100-symbol limit."""
    if not isinstance(text, str):
        raise InvalidRequest("The payout message must be text.")
    if _CONTROL.search(text):
        raise InvalidRequest("The payout message contains control characters.")
    escaped = html.escape(text.strip(), quote=False)
    # Count UTF-16 units, as Telegram does: an emoji may count twice. Stricter is safe.
    length = len(escaped.encode("utf-16-le")) // 2
    if length > PAYOUT_MESSAGE_LIMIT:
        raise InvalidRequest(
            f"The payout message is too long: at most {PAYOUT_MESSAGE_LIMIT} characters after "
            f"escaping <, > and & (it has {length})."
        )
    return escaped


@dataclass(frozen=True, slots=True)
class Reply:
    """One message from the inbound queue, read tolerantly.

    ``uuid`` is the server's own correlation id (opaque to us; it is the ``requestId`` of an
    authAdditionalOperation). Several replies lack ``uuid`` or ``action``.
    """

    result: str
    action: str | None
    payload: Mapping[str, Any]
    uuid: str | None = None
    token: str | None = field(default=None, repr=False)

    @classmethod
    def from_body(cls, body: bytes | str) -> Reply:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise FormatProblem(f"reply is not JSON: {exc}") from None
        data = as_mapping(data, "reply")
        result = as_str(require(data, "result", "reply"), "reply.result")
        action = data.get("action")
        payload = data.get("payload") or {}
        token = data.get("token")
        if not isinstance(payload, Mapping):
            raise FormatProblem("reply.payload is not an object")
        if token is None:
            token = payload.get("token")
        uuid = data.get("uuid")
        return cls(
            result=result,
            action=action if isinstance(action, str) and action else None,
            payload=payload,
            uuid=uuid if isinstance(uuid, str) and uuid else None,
            token=token if isinstance(token, str) and token else None,
        )

    @property
    def ok(self) -> bool:
        return self.result.lower() == "ok"

    @property
    def user_id(self) -> int | None:
        try:
            return optional_int(self.payload.get("userId"), "userId")
        except FormatProblem:
            return None

    @property
    def transaction_id(self) -> str | None:
        value = self.payload.get("transactionId")
        return value if isinstance(value, str) and value else None

    @property
    def request_id(self) -> str | None:
        value = self.payload.get("requestId")
        return value if isinstance(value, str) and value else None


class Request(abc.ABC, Generic[R]):
    """One action. Subclasses are frozen dataclasses that validate in ``__post_init__``."""

    action: ClassVar[str]
    #: May the same request be sent again without risk? (Money-moving ones say no.)
    idempotent: ClassVar[bool] = True

    @property
    def user_id(self) -> int | None:
        return None

    @property
    def token(self) -> str | None:
        return None

    @property
    def transaction_id(self) -> str | None:
        return None

    @property
    def request_id(self) -> str | None:
        return None

    @property
    def key(self) -> Hashable:
        """Requests with equal keys are never in flight together: their replies would look
        alike (a payout reply names only the user)."""
        if self.user_id is not None:
            return ("user", self.user_id)
        if self.token is not None:
            return ("token", self.token)
        return ("action", self.action)

    @abc.abstractmethod
    def payload(self) -> dict[str, Any] | None:
        """The ``payload`` object, or None for actions without one."""

    def body(self) -> dict[str, Any]:
        """The message as published: the document's field order, token first."""
        message: dict[str, Any] = {}
        if self.token is not None:
            message["token"] = self.token
        message["action"] = self.action
        payload = self.payload()
        if payload is not None:
            message["payload"] = payload
        return message

    @abc.abstractmethod
    def _read(self, reply: Reply) -> R:
        """The typed result from an Ok reply; may raise FormatProblem."""

    def parse(self, reply: Reply) -> R:
        """The result of an Ok reply, or the typed error of any other result."""
        if not reply.ok:
            raise error_for_result(
                reply.result,
                action=self.action,
                user_id=reply.user_id or self.user_id,
                payload=reply.payload,
            )
        try:
            return self._read(reply)
        except FormatProblem as exc:
            raise ProtocolError(self.action, str(exc)) from None

    def reply_user_id(self, reply: Reply) -> int:
        """The user id of an Ok reply, ours when the reply leaves it out."""
        user_id = reply.user_id if reply.user_id is not None else self.user_id
        if user_id is None:
            raise FormatProblem("payload.userId is missing")
        return user_id


class _UserRequest(Request[R]):
    """A request made with a player's token."""

    user: UserToken

    @property
    def user_id(self) -> int | None:
        return self.user.user_id

    @property
    def token(self) -> str | None:
        return self.user.token


@dataclass(frozen=True, slots=True)
class CreateAuthCode(Request[AuthCodeSent]):
    """Ask the game to send the player a code that grants us access."""

    telegram_id: int
    action: ClassVar[str] = "createAuthCode"

    def __post_init__(self) -> None:
        check_user_id(self.telegram_id)

    @property
    def user_id(self) -> int | None:
        return self.telegram_id

    def payload(self) -> dict[str, Any]:
        return {"userId": self.telegram_id}

    def _read(self, reply: Reply) -> AuthCodeSent:
        return AuthCodeSent(self.reply_user_id(reply))


@dataclass(frozen=True, slots=True)
class GrantToken(Request[GrantedToken]):
    """Exchange the code the player gave us for their access token."""

    telegram_id: int
    auth_code: str = field(repr=False)
    action: ClassVar[str] = "grantToken"

    def __post_init__(self) -> None:
        check_user_id(self.telegram_id)
        object.__setattr__(self, "auth_code", check_code(self.auth_code))

    @property
    def user_id(self) -> int | None:
        return self.telegram_id

    def payload(self) -> dict[str, Any]:
        return {"userId": self.telegram_id, "authCode": self.auth_code}

    def _read(self, reply: Reply) -> GrantedToken:
        payload = reply.payload
        return GrantedToken(
            user_id=self.reply_user_id(reply),
            game_id=as_str(require(payload, "id", "payload"), "payload.id"),
            token=as_str(require(payload, "token", "payload"), "payload.token"),
        )


@dataclass(frozen=True, slots=True)
class AuthAdditionalOperation(_UserRequest[OperationRequest]):
    """Ask the player to allow one more operation for our token (never spam: see client)."""

    user: UserToken
    operation: str
    action: ClassVar[str] = "authAdditionalOperation"

    def __post_init__(self) -> None:
        check_user_token(self.user)
        if not isinstance(self.operation, str) or not _OPERATION.fullmatch(self.operation):
            raise InvalidRequest("That is not a ChatWars operation name.")

    def payload(self) -> dict[str, Any]:
        return {"operation": self.operation}

    def _read(self, reply: Reply) -> OperationRequest:
        # The request id to complete this with is the reply's uuid; accept it in the payload
        # too, in case the server starts sending it there.
        request_id = reply.request_id or reply.uuid
        if request_id is None:
            raise FormatProblem("the reply has no uuid to use as requestId")
        operation = reply.payload.get("operation")
        return OperationRequest(
            request_id=request_id,
            operation=operation if isinstance(operation, str) and operation else self.operation,
            user_id=self.reply_user_id(reply),
        )


@dataclass(frozen=True, slots=True)
class GrantAdditionalOperation(_UserRequest[OperationGranted]):
    """Complete an authAdditionalOperation with the code the player sent us."""

    user: UserToken
    operation_request_id: str
    auth_code: str = field(repr=False)
    action: ClassVar[str] = "grantAdditionalOperation"

    def __post_init__(self) -> None:
        check_user_token(self.user)
        if not isinstance(self.operation_request_id, str) or not _PLAIN_ID.fullmatch(
            self.operation_request_id
        ):
            raise InvalidRequest("That permission request id is not valid.")
        object.__setattr__(self, "auth_code", check_code(self.auth_code))

    @property
    def request_id(self) -> str | None:
        return self.operation_request_id

    def payload(self) -> dict[str, Any]:
        return {"requestId": self.operation_request_id, "authCode": self.auth_code}

    def _read(self, reply: Reply) -> OperationGranted:
        return OperationGranted(
            request_id=reply.request_id or self.operation_request_id,
            user_id=self.reply_user_id(reply),
        )


class _MoneyRequest(_UserRequest[R]):
    """Moves or holds pouches under the caller's transactionId (the ledger's), so a retry
    is recognisable; never blindly repeated."""

    pouches: int
    txid: str
    idempotent: ClassVar[bool] = False

    @property
    def transaction_id(self) -> str | None:
        return self.txid

    def _check_money(self) -> None:
        check_user_token(self.user)
        check_pouches(self.pouches)
        check_transaction_id(self.txid)

    def _fees(self, reply: Reply) -> dict[str, Any]:
        return {
            "user_id": self.reply_user_id(reply),
            "transaction_id": self.txid,
            "pouches": self.pouches,
            "fee_gold": _gold(reply.payload, "fee"),
            "debit_gold": _gold(reply.payload, "debit"),
        }


def _gold(payload: Mapping[str, Any], key: str) -> int:
    amount = as_mapping(require(payload, key, "payload"), f"payload.{key}")
    return as_int(require(amount, "gold", f"payload.{key}"), f"payload.{key}.gold")


@dataclass(frozen=True, slots=True)
class AuthorizePayment(_MoneyRequest[PaymentAuthorized]):
    """Hold pouches on the player's account; the game sends them a confirmation code."""

    user: UserToken
    pouches: int
    txid: str
    action: ClassVar[str] = "authorizePayment"

    def __post_init__(self) -> None:
        self._check_money()

    def payload(self) -> dict[str, Any]:
        return {"amount": {"pouches": self.pouches}, "transactionId": self.txid}

    def _read(self, reply: Reply) -> PaymentAuthorized:
        return PaymentAuthorized(**self._fees(reply))


@dataclass(frozen=True, slots=True)
class Pay(_MoneyRequest[PaymentDone]):
    """Complete an authorized payment with the player's confirmation code."""

    user: UserToken
    pouches: int
    confirmation_code: str = field(repr=False)
    txid: str
    action: ClassVar[str] = "pay"

    def __post_init__(self) -> None:
        self._check_money()
        object.__setattr__(
            self, "confirmation_code", check_code(self.confirmation_code, "confirmation code")
        )

    def payload(self) -> dict[str, Any]:
        return {
            "amount": {"pouches": self.pouches},
            "confirmationCode": self.confirmation_code,
            "transactionId": self.txid,
        }

    def _read(self, reply: Reply) -> PaymentDone:
        return PaymentDone(**self._fees(reply))


@dataclass(frozen=True, slots=True)
class Payout(_MoneyRequest[PayoutDone]):
    """Send pouches from the app's balance to the player, with a short message."""

    user: UserToken
    pouches: int
    txid: str
    message: str = ""
    #: not sent: this id was sent before and that earlier try may have gone through, so a
    #: refusal of this one proves nothing about the payout (the ledger keeps it unknown)
    retry: bool = field(default=False, compare=False)
    action: ClassVar[str] = "payout"

    def __post_init__(self) -> None:
        self._check_money()
        object.__setattr__(self, "message", payout_message(self.message))

    def retried(self) -> Payout:
        """The same payout, sent again after a try whose outcome is unknown."""
        # ``message`` holds the escaped text; __post_init__ escapes what it is given.
        return Payout(self.user, self.pouches, self.txid, html.unescape(self.message), retry=True)

    def payload(self) -> dict[str, Any]:
        return {
            "transactionId": self.txid,
            "amount": {"pouches": self.pouches},
            "message": self.message,
        }

    def _read(self, reply: Reply) -> PayoutDone:
        return PayoutDone(
            user_id=self.reply_user_id(reply), transaction_id=self.txid, pouches=self.pouches
        )


@dataclass(frozen=True, slots=True)
class GetInfo(Request[AppInfo]):
    """The app's balance (and whatever else the server reports)."""

    action: ClassVar[str] = "getInfo"

    def payload(self) -> None:
        return None

    def _read(self, reply: Reply) -> AppInfo:
        payload = reply.payload
        balance = as_int(require(payload, "balance", "payload"), "payload.balance")
        return AppInfo(balance=balance, extra={k: v for k, v in payload.items() if k != "balance"})


_PROFILE_FIELDS = {
    "userName",
    "castle",
    "class",
    "lvl",
    "exp",
    "atk",
    "def",
    "gold",
    "pouches",
    "mana",
    "stamina",
    "guild",
    "guild_tag",
    "guild_emoji",
    "hp",
    "maxHp",
}


@dataclass(frozen=True, slots=True)
class RequestProfile(_UserRequest[Profile]):
    """The player's profile; needs the GetUserProfile operation."""

    user: UserToken
    action: ClassVar[str] = "requestProfile"

    def __post_init__(self) -> None:
        check_user_token(self.user)

    def payload(self) -> None:
        return None

    def _read(self, reply: Reply) -> Profile:
        data = as_mapping(require(reply.payload, "profile", "payload"), "payload.profile")

        def number(key: str) -> int | None:
            return optional_int(data.get(key), f"profile.{key}")

        guild = data.get("guild")
        return Profile(
            user_id=self.reply_user_id(reply),
            user_name=as_str(data.get("userName", ""), "profile.userName"),
            castle=as_str(data.get("castle", ""), "profile.castle"),
            character_class=as_str(data.get("class", ""), "profile.class"),
            level=number("lvl"),
            exp=number("exp"),
            attack=number("atk"),
            defense=number("def"),
            gold=number("gold"),
            pouches=number("pouches"),
            mana=number("mana"),
            stamina=number("stamina"),
            guild=as_str(guild, "profile.guild") if guild else None,
            extra={k: v for k, v in data.items() if k not in _PROFILE_FIELDS},
            guild_tag=_optional_text(data, "guild_tag", "profile"),
            guild_emoji=_optional_text(data, "guild_emoji", "profile"),
            hp=number("hp"),
            max_hp=number("maxHp"),
        )


@dataclass(frozen=True, slots=True)
class RequestStock(_UserRequest[Stock]):
    """The player's stock; needs the GetStock operation."""

    user: UserToken
    action: ClassVar[str] = "requestStock"

    def __post_init__(self) -> None:
        check_user_token(self.user)

    def payload(self) -> None:
        return None

    def _read(self, reply: Reply) -> Stock:
        data = as_mapping(require(reply.payload, "stock", "payload"), "payload.stock")
        items = {as_str(k, "stock item"): as_int(v, f"stock.{k}") for k, v in data.items()}
        return Stock(user_id=self.reply_user_id(reply), items=items)


def _optional_text(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    return as_str(value, f"{where}.{key}") if value not in (None, "") else None


# --- beyond the v0.5 document ---------------------------------------------------------------
# The actions below are not in the document. Their shapes are those the public clients read:
# alevinru/CWClient (src/exchange/CWExchange.js), Cactiw/Dark-Desire-Order-Bot
# (castle_files/libs/api.py) and savely-krasovsky/go-chatwars-api (types.go). Where they
# disagree, both readings are accepted.


@dataclass(frozen=True, slots=True)
class RequestBasicInfo(_UserRequest[BasicInfo]):
    """The player's class, attack and defence (go-chatwars-api's ``BasicProfile``)."""

    user: UserToken
    action: ClassVar[str] = "requestBasicInfo"

    def __post_init__(self) -> None:
        check_user_token(self.user)

    def payload(self) -> None:
        return None

    def _read(self, reply: Reply) -> BasicInfo:
        data = as_mapping(require(reply.payload, "profile", "payload"), "payload.profile")
        return BasicInfo(
            user_id=self.reply_user_id(reply),
            character_class=as_str(data.get("class", ""), "profile.class"),
            attack=optional_int(data.get("atk"), "profile.atk"),
            defense=optional_int(data.get("def"), "profile.def"),
        )


def _gear_item(raw: Any, where: str) -> GearItem:
    """A slot as Cactiw's bot reads it (an object) or as the Go client does (a name)."""
    if isinstance(raw, str):
        return GearItem(name=raw)
    item = as_mapping(raw, where)
    quality, condition = item.get("quality"), item.get("condition")
    return GearItem(
        name=as_str(require(item, "name", where), f"{where}.name"),
        attack=optional_int(item.get("atk"), f"{where}.atk"),
        defense=optional_int(item.get("def"), f"{where}.def"),
        quality=as_str(quality, f"{where}.quality") if quality else None,
        condition=as_str(condition, f"{where}.condition") if condition else None,
    )


@dataclass(frozen=True, slots=True)
class RequestGearInfo(_UserRequest[Gear]):
    """What the player wears; needs GetGearInfo (Cactiw's bot asks for that operation)."""

    user: UserToken
    action: ClassVar[str] = "requestGearInfo"

    def __post_init__(self) -> None:
        check_user_token(self.user)

    def payload(self) -> None:
        return None

    def _read(self, reply: Reply) -> Gear:
        payload = reply.payload
        # Cactiw's bot reads ``gearInfo`` (slot -> object), the Go client ``gear`` (slot ->
        # name) and ``ammo``.
        raw = payload.get("gearInfo")
        key = "gearInfo"
        if raw is None:
            raw, key = payload.get("gear"), "gear"
        slots = as_mapping(raw if raw is not None else {}, f"payload.{key}")
        ammo = as_mapping(payload.get("ammo") or {}, "payload.ammo")
        return Gear(
            user_id=self.reply_user_id(reply),
            slots={
                as_str(slot, "gear slot"): _gear_item(item, f"{key}.{slot}")
                for slot, item in slots.items()
            },
            ammo={as_str(k, "ammo"): as_int(v, f"ammo.{k}") for k, v in ammo.items()},
        )


@dataclass(frozen=True, slots=True)
class GuildInfoRequest(_UserRequest[GuildInfo]):
    """The player's guild and its stock (fields as both Cactiw's bot and the Go client read)."""

    user: UserToken
    action: ClassVar[str] = "guildInfo"

    def __post_init__(self) -> None:
        check_user_token(self.user)

    def payload(self) -> None:
        return None

    def _read(self, reply: Reply) -> GuildInfo:
        data = reply.payload

        def number(key: str) -> int | None:
            return optional_int(data.get(key), f"payload.{key}")

        stock = as_mapping(data.get("stock") or {}, "payload.stock")
        lobby = data.get("lobby")
        return GuildInfo(
            user_id=self.reply_user_id(reply),
            tag=as_str(data.get("tag", ""), "payload.tag"),
            name=as_str(data.get("name", ""), "payload.name"),
            castle=as_str(data.get("castle", ""), "payload.castle"),
            level=number("level"),
            glory=number("glory"),
            members=number("members"),
            lobby=as_str(lobby, "payload.lobby") if lobby else None,
            stock_size=number("stockSize"),
            stock_limit=number("stockLimit"),
            stock={as_str(k, "stock item"): as_int(v, f"stock.{k}") for k, v in stock.items()},
        )


def _recipes(raw: Any, where: str) -> tuple[Recipe, ...]:
    recipes = []
    for i, item in enumerate(as_list(raw if raw is not None else [], where)):
        entry = as_mapping(item, f"{where}[{i}]")
        recipes.append(
            Recipe(
                id=as_str(entry.get("id", ""), f"{where}[{i}].id"),
                name=as_str(require(entry, "name", f"{where}[{i}]"), f"{where}[{i}].name"),
                price=optional_int(entry.get("price"), f"{where}[{i}].price"),
            )
        )
    return tuple(recipes)


@dataclass(frozen=True, slots=True)
class ViewCraftbook(_UserRequest[Craftbook]):
    """The recipes the player knows (go-chatwars-api's ``ResViewCraftbook``)."""

    user: UserToken
    action: ClassVar[str] = "viewCraftbook"

    def __post_init__(self) -> None:
        check_user_token(self.user)

    def payload(self) -> None:
        return None

    def _read(self, reply: Reply) -> Craftbook:
        return Craftbook(
            user_id=self.reply_user_id(reply),
            alchemy=_recipes(reply.payload.get("alchemy"), "payload.alchemy"),
            craft=_recipes(reply.payload.get("craft"), "payload.craft"),
        )


#: the exchange's sanity bounds (ours: a typo must not order 10^9 of anything)
MAX_BUY_QUANTITY = 10_000
MAX_BUY_PRICE = 10_000
_ITEM_CODE = re.compile(r"[a-z]?[0-9]{1,3}")


@dataclass(frozen=True, slots=True)
class WantToBuy(_UserRequest[BuyOrderPlaced]):
    """An exchange buy order that spends the player's gold; needs TradeTerminal.

    Payload as all three public clients send it: ``itemCode``, ``quantity``, ``price`` and
    ``exactPrice`` (false: buy at ``price`` or cheaper). The reply names the item as
    ``itemName`` (CWClient reads that) or ``itemCode`` (the Go client). The game takes no
    transactionId, so a buy whose reply is lost cannot be told apart from a new one: it is
    never re-sent; ``txid`` is only the ledger row's id, not sent.
    """

    user: UserToken
    item_code: str
    quantity: int
    price: int
    txid: str
    exact_price: bool = False
    action: ClassVar[str] = "wantToBuy"
    idempotent: ClassVar[bool] = False

    def __post_init__(self) -> None:
        check_user_token(self.user)
        check_transaction_id(self.txid)
        if not isinstance(self.item_code, str) or not _ITEM_CODE.fullmatch(self.item_code):
            raise InvalidRequest("That is not an item code of the exchange (like 08).")
        for value, limit, what in (
            (self.quantity, MAX_BUY_QUANTITY, "quantity"),
            (self.price, MAX_BUY_PRICE, "price"),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= limit:
                raise InvalidRequest(f"The {what} must be a whole number from 1 to {limit:,}.")

    @property
    def transaction_id(self) -> str | None:
        return self.txid

    def payload(self) -> dict[str, Any]:
        return {
            "itemCode": self.item_code,
            "quantity": self.quantity,
            "price": self.price,
            "exactPrice": self.exact_price,
        }

    def _read(self, reply: Reply) -> BuyOrderPlaced:
        payload = reply.payload
        item = payload.get("itemName") or payload.get("itemCode") or self.item_code
        quantity = optional_int(payload.get("quantity"), "payload.quantity")
        return BuyOrderPlaced(
            user_id=self.reply_user_id(reply),
            transaction_id=self.txid,
            item=as_str(item, "payload.itemName"),
            quantity=quantity if quantity is not None else self.quantity,
        )
