"""The game behind the simulator: players, tokens, codes, balances, and the rules of each action.

Kept apart from the AMQP plumbing in ``simulator.py`` so the rules read in one place and each
request is handled atomically (plain synchronous code: no interleaving between the check and
the transfer, so a transactionId can never be spent twice).

Where the document is silent, the simulator decides, and says so here:

* A reused ``transactionId`` is refused with the result ``DuplicateTransaction`` (payload:
  ``userId`` and ``transactionId``). An id is *used* once an authorizePayment or a payout with
  it was accepted; ``pay`` must carry the id of its authorizePayment. A refused request does
  not use up its id. This is what makes a payout retried after a lost reply happen once.
* Payment fees: 0.8 % of 100 gold per pouch, rounded up (the document's 5 pouches: fee 4,
  debit 496); the app's balance grows by the debit on ``pay`` and shrinks by 100 gold per
  pouch on ``payout``.
* ``requestProfile`` needs ``GetUserProfile`` and ``requestStock`` needs ``GetStock``; a fresh
  token has neither unless ``initial_operations`` says so.
* An unknown ``requestId`` in grantAdditionalOperation is ``InvalidCode``; an authorized
  payment not paid within ``payment_ttl`` seconds expires (``AuthorizationFailed``).

Where the real service differs from the document, the simulator follows the public clients
that ran against it for years, and says which:

* The ``authAdditionalOperation`` Ok reply carries ``action`` (alevinru/CWClient,
  Cactiw/Dark-Desire-Order-Bot and savely-krasovsky/go-chatwars-api all dispatch replies on
  it); the client still accepts a reply without it, as the document shows.
* ``authorizePayment`` and ``pay`` replies carry ``transactionId`` (go-chatwars-api's
  ``ResAuthorizePayment``/``ResPay``); ``payout`` replies carry only ``userId``, as there.
* Profiles carry ``guild_tag``, ``guild_emoji``, ``hp`` and ``maxHp`` (Cactiw's bot reads all
  four; go-chatwars-api reads ``guild_tag``, ``hp``, ``maxHp``).
* ``requestBasicInfo`` answers ``profile: {class, atk, def}`` (go-chatwars-api) and needs no
  extra operation (our choice: no client asks for one).
* ``requestGearInfo`` needs ``GetGearInfo`` (Cactiw's bot asks for it) and answers both
  ``gearInfo`` (slot -> {name, atk, def, quality, condition}, Cactiw's bot) and ``gear`` (slot
  -> name) with ``ammo`` (go-chatwars-api).
* ``guildInfo`` answers ``tag, name, castle, level, glory, members, lobby, stockSize,
  stockLimit, stock`` (Cactiw's bot and go-chatwars-api) and needs ``GuildStock``;
  ``viewCraftbook`` answers ``alchemy`` and ``craft`` lists of ``{id, name, price}``
  (go-chatwars-api) and needs ``ViewCraftbook``. Those two operation names are our choice:
  the clients learn them from ``Forbidden``'s ``requiredOperation``, as ours does.
* ``wantToBuy`` takes ``itemCode, quantity, price, exactPrice`` (all three clients), needs
  ``TradeTerminal`` (Cactiw's bot asks for it), spends the player's gold at the cheapest
  offer at or under ``price`` (exactly ``price`` with ``exactPrice``), and answers
  ``itemName`` (CWClient reads it), ``itemCode`` (go-chatwars-api) and ``quantity``.
  Refusals: ``NoOffersFoundByPrice``, ``InsufficientFunds``, ``LevelIsLow`` (below level 5),
  the ones CWClient handles.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .errors import DUPLICATE_TRANSACTION
from .feeds import FeedKind

log = logging.getLogger(__name__)

#: Which operation each guarded action needs (the doc's "NB: Requires ...").
REQUIRED_OPERATIONS = {
    "requestProfile": "GetUserProfile",
    "requestStock": "GetStock",
    "requestGearInfo": "GetGearInfo",
    "guildInfo": "GuildStock",
    "viewCraftbook": "ViewCraftbook",
    "wantToBuy": "TradeTerminal",
}
#: Operations a token can be granted; anything else is NoSuchOperation.
KNOWN_OPERATIONS = frozenset(
    {"GetUserProfile", "GetStock", "GetGearInfo", "TradeTerminal", "GuildStock", "ViewCraftbook"}
)
#: the game's exchange codes of the simulated items (as alevinru/CWClient lists them)
ITEM_CODES = {
    "Thread": "01",
    "Stick": "02",
    "Pelt": "03",
    "Bone": "04",
    "Coal": "05",
    "Charcoal": "06",
    "Powder": "07",
    "Iron ore": "08",
    "Cloth": "09",
    "Silver ore": "10",
    "Magic stone": "13",
    "Steel": "19",
    "Leather": "20",
    "Bone powder": "21",
    "Metal plate": "33",
}
#: wantToBuy is refused below this level
WTB_MIN_LEVEL = 5
GOLD_PER_POUCH = 100
PAYOUT_MESSAGE_LIMIT = 100

CASTLES = ("🦌", "🐉", "🦅", "🐺", "🥔", "🦈", "🌑")
CLASSES = ("⚒", "⚔️", "🛡", "🏹", "📦", "⚗️")
ITEMS = (
    "Thread",
    "Stick",
    "Pelt",
    "Bone",
    "Coal",
    "Charcoal",
    "Powder",
    "Iron ore",
    "Cloth",
    "Silver ore",
    "Bone powder",
    "Metal plate",
    "Magic stone",
    "Leather",
    "Steel",
)
NAMES = ("Wolpertinger", "Guacamele", "myDeerest", "Kettle", "Sable", "Ondine", "Ferro", "Quill")

_XID_ALPHABET = "0123456789abcdefghijklmnopqrstuv"


@dataclass
class SimUser:
    """A player, known by Telegram id; ``pouches`` is what payments take and payouts give."""

    user_id: int
    game_id: str
    name: str
    castle: str
    character_class: str
    level: int = 35
    exp: int = 108785
    atk: int = 78
    defense: int = 145
    gold: int = 137
    pouches: int = 10
    mana: int = 880
    stamina: int = 4
    guild: str = "No Correlation"
    guild_tag: str | None = "NC"
    guild_emoji: str | None = None
    hp: int = 1200
    max_hp: int = 1200
    stock: dict[str, int] = field(default_factory=dict)
    gear: dict[str, dict[str, Any]] = field(default_factory=dict)
    ammo: dict[str, int] = field(default_factory=dict)
    craftbook: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    active: bool = True

    def profile(self) -> dict[str, Any]:
        return {
            "atk": self.atk,
            "castle": self.castle,
            "class": self.character_class,
            "def": self.defense,
            "exp": self.exp,
            "gold": self.gold,
            "guild": self.guild,
            "lvl": self.level,
            "mana": self.mana,
            "pouches": self.pouches,
            "stamina": self.stamina,
            "userName": self.name,
            "hp": self.hp,
            "maxHp": self.max_hp,
        } | {
            key: value
            for key, value in (("guild_tag", self.guild_tag), ("guild_emoji", self.guild_emoji))
            if value
        }

    def gear_info(self) -> dict[str, dict[str, Any]]:
        return {slot: dict(item) for slot, item in self.gear.items()}


@dataclass
class SimGuild:
    """A guild, found by its name on the player's profile."""

    tag: str
    name: str
    castle: str
    level: int = 12
    glory: int = 3400
    members: int = 18
    lobby: str = "🌲Forest"
    stock_limit: int = 20_000
    stock: dict[str, int] = field(default_factory=dict)

    def info(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "name": self.name,
            "castle": self.castle,
            "level": self.level,
            "glory": self.glory,
            "members": self.members,
            "lobby": self.lobby,
            "stockSize": sum(self.stock.values()),
            "stockLimit": self.stock_limit,
            "stock": dict(self.stock),
        }


@dataclass
class SentCode:
    """A code the game bot "sent" a player: ``kind`` is auth, operation or payment."""

    kind: str
    code: str
    request_id: str | None = None
    transaction_id: str | None = None


@dataclass
class Transfer:
    """A payment (player to app) or payout (app to player) the game carried out."""

    kind: str
    transaction_id: str
    user_id: int
    pouches: int
    fee_gold: int
    balance_change: int
    message: str | None = None


@dataclass
class _Token:
    user_id: int
    operations: set[str]


@dataclass
class _OperationRequest:
    token: str
    user_id: int
    operation: str
    code: str


@dataclass
class _Authorization:
    user_id: int
    pouches: int
    code: str
    fee: int
    debit: int
    expires_at: float


@dataclass
class Rule:
    """A test hook: the next ``times`` requests matching action/user get special treatment."""

    action: str | None
    user_id: int | None
    times: int
    result: str = ""
    payload: Mapping[str, Any] | None = None

    def matches(self, action: str | None, user_id: int | None) -> bool:
        return (self.action is None or self.action == action) and (
            self.user_id is None or self.user_id == user_id
        )


class Handled(NamedTuple):
    """A reply, with the action and player it concerns (for the simulator's test hooks)."""

    reply: dict[str, Any]
    action: str | None
    user_id: int | None


class Refusal(Exception):
    """A non-Ok result, raised inside a handler and turned into the documented reply."""

    def __init__(self, result: str, **payload: Any) -> None:
        super().__init__(result)
        self.result = result
        self.payload = payload


def take_rule(rules: list[Rule], action: str | None, user_id: int | None) -> Rule | None:
    """Consume one use of the first rule matching this request."""
    for rule in rules:
        if rule.matches(action, user_id):
            rule.times -= 1
            if rule.times <= 0:
                rules.remove(rule)
            return rule
    return None


class ChatWarsWorld:
    """All state of the simulated game, and the handler of each action."""

    def __init__(
        self,
        *,
        seed: int | None = None,
        balance: int = 100_000,
        auto_register: bool = True,
        initial_operations: Iterable[str] = (),
        payment_ttl: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
        document_shapes: bool = False,
    ) -> None:
        #: reply exactly as the v0.5 document shows (no ``action`` on authAdditionalOperation,
        #: no ``transactionId`` on authorizePayment/pay), to test a client's tolerance
        self.document_shapes = document_shapes
        self.rng = random.Random(seed)
        self.balance = balance
        self.auto_register = auto_register
        self.initial_operations = frozenset(initial_operations)
        self.payment_ttl = payment_ttl
        self.registered = True
        self.clock = clock
        self.users: dict[int, SimUser] = {}
        self.requests: list[Any] = []  # every request as received (parsed JSON, or raw text)
        self.codes: dict[int, list[SentCode]] = {}
        self.messages: dict[int, list[str]] = {}
        self.transfers: list[Transfer] = []
        self._auth_codes: dict[int, str] = {}
        self._tokens: dict[str, _Token] = {}
        self._operation_requests: dict[str, _OperationRequest] = {}
        self._authorizations: dict[str, _Authorization] = {}
        self._used_transactions: set[str] = set()
        self._paid: set[str] = set()
        self._injections: list[Rule] = []
        self.guilds: dict[str, SimGuild] = {}
        #: the exchange: item code -> the cheapest offer's price in gold
        self.market: dict[str, int] = {
            code: 3 + i % 7 for i, code in enumerate(ITEM_CODES.values())
        }
        #: every wantToBuy carried out: (user_id, item code, quantity, gold spent)
        self.purchases: list[tuple[int, str, int, int]] = []

    # ------------------------------------------------------------------ test hooks

    def add_user(self, user_id: int, **fields: Any) -> SimUser:
        """Create (or replace) a player; fields override the seeded defaults."""
        user = self._new_user(user_id)
        for name, value in fields.items():
            if not hasattr(user, name):
                raise TypeError(f"SimUser has no field {name!r}")
            setattr(user, name, value)
        self.users[user_id] = user
        return user

    def remove_user(self, user_id: int) -> None:
        """The player becomes inactive: every request about them gets NoSuchUser."""
        user = self.users.get(user_id) or self.add_user(user_id)
        user.active = False

    def codes_sent(self, user_id: int, kind: str | None = None) -> list[SentCode]:
        return [c for c in self.codes.get(user_id, []) if kind is None or c.kind == kind]

    def last_code(self, user_id: int, kind: str | None = None) -> str:
        """The newest code the game sent this player (of ``kind``); KeyError if none."""
        codes = self.codes_sent(user_id, kind)
        if not codes:
            raise KeyError(f"no {kind or ''} code was sent to user {user_id}")
        return codes[-1].code

    def grant_operation(self, user_id: int, operation: str) -> None:
        """Allow ``operation`` on every token of this player (skips the approval flow)."""
        for token in self._tokens.values():
            if token.user_id == user_id:
                token.operations.add(operation)

    def token_for(self, user_id: int, *operations: str) -> str:
        """A token for a player, granted the way the game grants it (an auth code sent, then
        exchanged), with ``operations`` allowed: for tests and benchmarks not about linking."""
        self.handle(
            json.dumps({"action": "createAuthCode", "payload": {"userId": user_id}}).encode()
        )
        grant = {"userId": user_id, "authCode": self.last_code(user_id, "auth")}
        reply = self.handle(json.dumps({"action": "grantToken", "payload": grant}).encode()).reply
        token = str(reply["payload"]["token"])
        for operation in operations:
            self.grant_operation(user_id, operation)
        return token

    def revoke_tokens(self, user_id: int) -> None:
        """The player revoked our access: their tokens become InvalidToken."""
        for key in [k for k, t in self._tokens.items() if t.user_id == user_id]:
            del self._tokens[key]

    def inject(
        self,
        result: str,
        *,
        action: str | None = None,
        user_id: int | None = None,
        payload: Mapping[str, Any] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` matching requests with ``result`` and change nothing."""
        self._injections.append(Rule(action, user_id, times, result, payload))

    @property
    def payments(self) -> list[Transfer]:
        return [t for t in self.transfers if t.kind == "payment"]

    @property
    def payouts(self) -> list[Transfer]:
        return [t for t in self.transfers if t.kind == "payout"]

    # ------------------------------------------------------------------ handling

    def handle(self, body: bytes) -> Handled:
        """One request in, its reply out (exactly in the document's shapes)."""
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            self.requests.append(body.decode("utf-8", "replace"))
            return Handled({"result": "BadFormat", "payload": {}}, None, None)
        self.requests.append(data)
        if not isinstance(data, dict) or not isinstance(data.get("action"), str):
            return Handled({"result": "BadFormat", "payload": {}}, None, None)
        action, token, payload = data["action"], data.get("token"), data.get("payload")
        if payload is None:
            payload = {}
        user_id = self._subject(token, payload if isinstance(payload, dict) else {})
        return Handled(self._reply(action, token, payload, user_id), action, user_id)

    def _reply(self, action: str, token: Any, payload: Any, user_id: int | None) -> dict[str, Any]:
        uuid = self._xid()
        handler = getattr(self, f"_do_{action}", None)
        if handler is None:
            return {"uuid": uuid, "action": action, "result": "ActionNotFound", "payload": {}}
        if not isinstance(payload, dict) or (token is not None and not isinstance(token, str)):
            return {"uuid": uuid, "action": action, "result": "BadFormat", "payload": {}}
        rule = take_rule(self._injections, action, user_id)
        try:
            if rule is not None:
                raise Refusal(rule.result, **dict(rule.payload or {}))
            if not self.registered:
                raise Refusal("NotRegistered")
            result_payload, extra = handler(token, payload, uuid)
        except Refusal as refusal:
            if refusal.result == "InvalidToken":
                # Observed shape: nothing but the result and the token.
                return {"result": "InvalidToken", "payload": {"token": token}}
            reply_payload = dict(refusal.payload)
            if user_id is not None:
                reply_payload.setdefault("userId", user_id)
            return {
                "uuid": uuid,
                "action": action,
                "result": refusal.result,
                "payload": reply_payload,
            }
        # The document's field order; ``extra`` adds a top-level token or, with None, drops
        # a field that action's reply does not have.
        reply = {
            "uuid": uuid,
            "token": extra.get("token"),
            "action": action,
            "result": "Ok",
            "payload": result_payload,
        }
        reply.update((key, None) for key, value in extra.items() if value is None)
        if self.document_shapes:
            if action == "authAdditionalOperation":
                reply["action"] = None
            if action in ("authorizePayment", "pay"):
                result_payload.pop("transactionId", None)
        return {key: value for key, value in reply.items() if value is not None}

    def _subject(self, token: Any, payload: Mapping[str, Any]) -> int | None:
        """The Telegram id a request is about, for rules and error payloads."""
        if isinstance(token, str) and token in self._tokens:
            return self._tokens[token].user_id
        user_id = payload.get("userId")
        return user_id if isinstance(user_id, int) and not isinstance(user_id, bool) else None

    def _user(self, user_id: Any) -> SimUser:
        if isinstance(user_id, bool) or not isinstance(user_id, int):
            raise Refusal("BadFormat")
        user = self.users.get(user_id)
        if user is None and self.auto_register and user_id > 0:
            user = self.users[user_id] = self._new_user(user_id)
        if user is None or not user.active:
            raise Refusal("NoSuchUser")
        return user

    def _token(self, token: Any) -> tuple[_Token, SimUser]:
        if not isinstance(token, str) or token not in self._tokens:
            raise Refusal("InvalidToken")
        grant = self._tokens[token]
        return grant, self._user(grant.user_id)

    def _send_code(self, user_id: int, kind: str, digits: int, **ids: str) -> str:
        code = "".join(self.rng.choice("0123456789") for _ in range(digits))
        self.codes.setdefault(user_id, []).append(SentCode(kind, code, **ids))
        # The real game messages the player on Telegram; run standalone (``bot --log-level
        # info simulate chatwars``), the simulator's log is where a demo user reads it.
        log.info("the game sends Telegram user %s a %s code: %s", user_id, kind, code)
        return code

    # Each _do_<action> returns (reply payload, extra top-level fields) or raises Refusal.

    def _do_createAuthCode(self, token: Any, payload: dict[str, Any], uuid: str) -> tuple:
        user = self._user(payload.get("userId"))
        self._auth_codes[user.user_id] = self._send_code(user.user_id, "auth", 5)
        return {"userId": user.user_id}, {}

    def _do_grantToken(self, token: Any, payload: dict[str, Any], uuid: str) -> tuple:
        user = self._user(payload.get("userId"))
        code = payload.get("authCode")
        if not isinstance(code, str):
            raise Refusal("BadFormat")
        if self._auth_codes.get(user.user_id) != code:
            raise Refusal("InvalidCode")
        del self._auth_codes[user.user_id]
        new_token = self._hex(32)
        self._tokens[new_token] = _Token(user.user_id, set(self.initial_operations))
        return {"userId": user.user_id, "id": user.game_id, "token": new_token}, {}

    def _do_authAdditionalOperation(self, token: Any, payload: dict[str, Any], uuid: str) -> tuple:
        _grant, user = self._token(token)
        operation = payload.get("operation")
        if not isinstance(operation, str):
            raise Refusal("BadFormat")
        if operation not in KNOWN_OPERATIONS:
            raise Refusal("NoSuchOperation")
        code = self._send_code(user.user_id, "operation", 6, request_id=uuid)
        self._operation_requests[uuid] = _OperationRequest(token, user.user_id, operation, code)
        # The uuid is the requestId to complete it with. The document's reply has no
        # "action"; the real one has it (all three public clients dispatch on it).
        return {"operation": operation, "userId": user.user_id}, {}

    def _do_grantAdditionalOperation(self, token: Any, payload: dict[str, Any], uuid: str) -> tuple:
        grant, user = self._token(token)
        request_id, code = payload.get("requestId"), payload.get("authCode")
        if not isinstance(request_id, str) or not isinstance(code, str):
            raise Refusal("BadFormat")
        pending = self._operation_requests.get(request_id)
        if pending is None or pending.token != token or pending.code != code:
            raise Refusal("InvalidCode", requestId=request_id)
        del self._operation_requests[request_id]
        grant.operations.add(pending.operation)
        return {"requestId": request_id, "userId": user.user_id}, {"uuid": None}

    def _pouches(self, payload: Mapping[str, Any]) -> int:
        amount = payload.get("amount")
        if not isinstance(amount, dict) or len(amount) != 1:
            raise Refusal("BadFormat")
        ((currency, value),) = amount.items()
        if currency != "pouches":
            raise Refusal("BadCurrency")
        if isinstance(value, bool) or not isinstance(value, int):
            raise Refusal("BadFormat")
        if value <= 0:
            raise Refusal("BadAmount")
        return value

    def _transaction_id(self, payload: Mapping[str, Any]) -> str:
        transaction_id = payload.get("transactionId")
        if not isinstance(transaction_id, str) or not transaction_id:
            raise Refusal("BadFormat")
        return transaction_id

    def _duplicate(self, transaction_id: str, user_id: int) -> Refusal:
        return Refusal(DUPLICATE_TRANSACTION, transactionId=transaction_id, userId=user_id)

    @staticmethod
    def fee_for(pouches: int) -> tuple[int, int]:
        """(fee, debit) in gold for a payment of ``pouches``."""
        gross = pouches * GOLD_PER_POUCH
        fee = (gross * 8 + 999) // 1000
        return fee, gross - fee

    def _held(self, user_id: int) -> int:
        now = self.clock()
        return sum(
            a.pouches
            for a in self._authorizations.values()
            if a.user_id == user_id and a.expires_at > now
        )

    def _do_authorizePayment(self, token: Any, payload: dict[str, Any], uuid: str) -> tuple:
        _grant, user = self._token(token)
        pouches = self._pouches(payload)
        transaction_id = self._transaction_id(payload)
        if transaction_id in self._used_transactions:
            raise self._duplicate(transaction_id, user.user_id)
        if user.pouches - self._held(user.user_id) < pouches:
            raise Refusal("InsufficientFunds")
        fee, debit = self.fee_for(pouches)
        code = self._send_code(user.user_id, "payment", 4, transaction_id=transaction_id)
        self._authorizations[transaction_id] = _Authorization(
            user.user_id, pouches, code, fee, debit, self.clock() + self.payment_ttl
        )
        self._used_transactions.add(transaction_id)
        # transactionId: as go-chatwars-api reads it (not in the document's reply).
        reply = {"fee": {"gold": fee}, "debit": {"gold": debit}, "userId": user.user_id}
        return {**reply, "transactionId": transaction_id}, {}

    def _do_pay(self, token: Any, payload: dict[str, Any], uuid: str) -> tuple:
        _grant, user = self._token(token)
        pouches = self._pouches(payload)
        transaction_id = self._transaction_id(payload)
        code = payload.get("confirmationCode")
        if not isinstance(code, str):
            raise Refusal("BadFormat")
        if transaction_id in self._paid:
            raise self._duplicate(transaction_id, user.user_id)
        held = self._authorizations.get(transaction_id)
        if (
            held is None
            or held.user_id != user.user_id
            or held.pouches != pouches
            or held.code != code
            or held.expires_at <= self.clock()
        ):
            raise Refusal("AuthorizationFailed")
        if user.pouches < pouches:
            raise Refusal("InsufficientFunds")
        del self._authorizations[transaction_id]
        self._paid.add(transaction_id)
        user.pouches -= pouches
        self.balance += held.debit
        self.transfers.append(
            Transfer("payment", transaction_id, user.user_id, pouches, held.fee, held.debit)
        )
        reply = {
            "fee": {"gold": held.fee},
            "debit": {"gold": held.debit},
            "userId": user.user_id,
            "transactionId": transaction_id,  # as go-chatwars-api reads it
        }
        return reply, {"token": token}

    def _do_payout(self, token: Any, payload: dict[str, Any], uuid: str) -> tuple:
        _grant, user = self._token(token)
        pouches = self._pouches(payload)
        transaction_id = self._transaction_id(payload)
        message = payload.get("message", "")
        if not isinstance(message, str) or len(message) > PAYOUT_MESSAGE_LIMIT:
            raise Refusal("BadFormat")
        if transaction_id in self._used_transactions:
            raise self._duplicate(transaction_id, user.user_id)
        gold = pouches * GOLD_PER_POUCH
        if self.balance < gold:
            raise Refusal("InsufficientFunds")
        self._used_transactions.add(transaction_id)
        self.balance -= gold
        user.pouches += pouches
        self.transfers.append(
            Transfer("payout", transaction_id, user.user_id, pouches, 0, -gold, message)
        )
        if message:
            self.messages.setdefault(user.user_id, []).append(message)
        return {"userId": user.user_id}, {}

    def _do_getInfo(self, token: Any, payload: dict[str, Any], uuid: str) -> tuple:
        return {"balance": self.balance}, {"uuid": None}

    def _guarded(self, token: Any, action: str) -> SimUser:
        grant, user = self._token(token)
        operation = REQUIRED_OPERATIONS[action]
        if operation not in grant.operations:
            raise Refusal("Forbidden", requiredOperation=operation, userId=user.user_id)
        return user

    def _do_requestProfile(self, token: Any, payload: dict[str, Any], uuid: str) -> tuple:
        user = self._guarded(token, "requestProfile")
        return {"profile": user.profile(), "userId": user.user_id}, {"uuid": None}

    def _do_requestStock(self, token: Any, payload: dict[str, Any], uuid: str) -> tuple:
        user = self._guarded(token, "requestStock")
        return {"stock": dict(user.stock), "userId": user.user_id}, {"uuid": None}

    # Beyond the document (see the module docstring for whose reading each follows).

    def _do_requestBasicInfo(self, token: Any, payload: dict[str, Any], uuid: str) -> tuple:
        _grant, user = self._token(token)
        profile = {"class": user.character_class, "atk": user.atk, "def": user.defense}
        return {"profile": profile, "userId": user.user_id}, {"uuid": None}

    def _do_requestGearInfo(self, token: Any, payload: dict[str, Any], uuid: str) -> tuple:
        user = self._guarded(token, "requestGearInfo")
        gear = user.gear_info()
        return {
            "gearInfo": gear,
            "gear": {slot: item["name"] for slot, item in gear.items()},
            "ammo": dict(user.ammo),
            "userId": user.user_id,
        }, {"uuid": None}

    def guild_of(self, user: SimUser) -> SimGuild | None:
        if not user.guild:
            return None
        guild = self.guilds.get(user.guild)
        if guild is None:
            tag = user.guild_tag or "".join(w[0] for w in user.guild.split()).upper()[:4]
            stock = {item: self.rng.randint(10, 900) for item in self.rng.sample(ITEMS, 5)}
            guild = SimGuild(tag, user.guild, user.castle, stock=dict(sorted(stock.items())))
            self.guilds[user.guild] = guild
        return guild

    def _do_guildInfo(self, token: Any, payload: dict[str, Any], uuid: str) -> tuple:
        user = self._guarded(token, "guildInfo")
        guild = self.guild_of(user)
        if guild is None:
            raise Refusal("NotInGuild")
        return {**guild.info(), "userId": user.user_id}, {"uuid": None}

    def _do_viewCraftbook(self, token: Any, payload: dict[str, Any], uuid: str) -> tuple:
        user = self._guarded(token, "viewCraftbook")
        book = {kind: [dict(r) for r in recipes] for kind, recipes in user.craftbook.items()}
        return {
            "alchemy": book.get("alchemy", []),
            "craft": book.get("craft", []),
            "userId": user.user_id,
        }, {"uuid": None}

    def _do_wantToBuy(self, token: Any, payload: dict[str, Any], uuid: str) -> tuple:
        user = self._guarded(token, "wantToBuy")
        code, quantity, price = (payload.get(k) for k in ("itemCode", "quantity", "price"))
        exact = payload.get("exactPrice", False)
        if (
            not isinstance(code, str)
            or not isinstance(exact, bool)
            or any(isinstance(v, bool) or not isinstance(v, int) for v in (quantity, price))
        ):
            raise Refusal("BadFormat")
        if quantity <= 0 or price <= 0:
            raise Refusal("BadAmount")
        if user.level < WTB_MIN_LEVEL:
            raise Refusal("LevelIsLow")
        names = {c: n for n, c in ITEM_CODES.items()}
        offer = self.market.get(code)
        if code not in names or offer is None or offer > price or (exact and offer != price):
            raise Refusal("NoOffersFoundByPrice")
        cost = offer * quantity
        if user.gold < cost:
            raise Refusal("InsufficientFunds")
        user.gold -= cost
        name = names[code]
        user.stock[name] = user.stock.get(name, 0) + quantity
        self.purchases.append((user.user_id, code, quantity, cost))
        reply = {"itemName": name, "itemCode": code, "quantity": quantity, "userId": user.user_id}
        return reply, {"uuid": None}

    # ------------------------------------------------------------------ generated data

    def _xid(self) -> str:
        """A 20-character id shaped like the server's correlation ids."""
        return "".join(self.rng.choice(_XID_ALPHABET) for _ in range(20))

    def _hex(self, length: int) -> str:
        return "".join(self.rng.choice("0123456789abcdef") for _ in range(length))

    def _new_user(self, user_id: int) -> SimUser:
        rng = self.rng
        stock = {item: rng.randint(1, 300) for item in rng.sample(ITEMS, 6)}
        stock["Pouch of gold"] = rng.randint(0, 50)
        gear = {
            "weapon": {"name": "Hunter Bow", "atk": 21, "quality": "C", "condition": "reinforced"},
            "armor": {"name": "Hunter Armor", "def": 13},
            "boots": {"name": "Steel boots", "def": 5},
        }
        craftbook = {
            "alchemy": [{"id": "p01", "name": "Vial of Rage", "price": 15}],
            "craft": [
                {"id": "a01", "name": "Steel boots", "price": 30},
                {"id": "a02", "name": "Hunter Armor", "price": 80},
            ],
        }
        return SimUser(
            user_id=user_id,
            game_id=self._hex(32),
            name=f"{rng.choice(NAMES)}{user_id % 1000}",
            castle=rng.choice(CASTLES),
            character_class=rng.choice(CLASSES),
            level=rng.randint(5, 60),
            stock=dict(sorted(stock.items())),
            gear=gear,
            ammo={"arrows": 120},
            craftbook=craftbook,
        )

    def feed_payload(self, kind: FeedKind) -> Any:
        """A plausible message for one feed, in the document's shape."""
        rng = self.rng

        def trader(prefix: str) -> dict[str, Any]:
            return {
                f"{prefix}Id": self._hex(32),
                f"{prefix}Castle": rng.choice(CASTLES),
                f"{prefix}Name": rng.choice(NAMES),
            }

        item = {"item": rng.choice(ITEMS), "qty": rng.randint(1, 50), "price": rng.randint(1, 30)}
        if kind is FeedKind.DEALS:
            return {**trader("seller"), **trader("buyer"), **item}
        if kind is FeedKind.OFFERS:
            return {**trader("seller"), **item}
        if kind is FeedKind.DUELS:  # go-chatwars-api's Duel

            def duelist() -> dict[str, Any]:
                return {
                    "id": self._hex(32),
                    "name": rng.choice(NAMES),
                    "tag": rng.choice(("NC", "DD", None)),
                    "castle": rng.choice(CASTLES),
                    "level": rng.randint(10, 70),
                    "hp": rng.randint(0, 900),
                }

            return {
                "winner": duelist(),
                "loser": duelist(),
                "isChallenge": rng.random() < 0.2,
                "isGuildDuel": rng.random() < 0.1,
            }
        if kind is FeedKind.AU_DIGEST:  # go-chatwars-api's AuctionDigestItem list
            return [
                {
                    "lotId": str(rng.randint(10_000, 99_999)),
                    "itemName": rng.choice(("Hunter Bow", "Steel boots", "Mithril shield")),
                    "sellerName": rng.choice(NAMES),
                    "sellerCastle": rng.choice(CASTLES),
                    "quality": rng.choice(("Fine", None)),
                    "startedAt": "2026-12-02T10:00:00.000Z",
                    "endAt": "2026-12-02T14:00:00.000Z",
                    "buyerCastle": None,
                    "status": "Active",
                    "buyerName": None,
                    "price": rng.randint(1, 400),
                    "stats": {"atk": rng.randint(1, 30)},
                }
                for _ in range(3)
            ]
        if kind is FeedKind.DIGEST:
            return [
                {"name": name, "prices": sorted(rng.randint(1, 40) for _ in range(10))}
                for name in rng.sample(ITEMS, 5)
            ]
        return [
            {
                "link": "".join(
                    rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijk") for _ in range(5)
                ),
                "name": rng.choice(("Studio", "Shack", "Forge", "Stall")),
                "ownerName": rng.choice(NAMES),
                "ownerCastle": rng.choice(CASTLES),
                "kind": rng.choice(CLASSES),
                "mana": rng.randint(0, 900),
                "offers": [
                    {
                        "item": rng.choice(ITEMS),
                        "price": rng.randint(1, 90),
                        "mana": rng.randint(5, 150),
                    }
                    for _ in range(rng.randint(1, 3))
                ],
            }
            for _ in range(3)
        ]
