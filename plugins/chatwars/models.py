"""What the ChatWars calls take and give back, as plain dataclasses.

Tokens are secrets: every dataclass holding one keeps it out of ``repr`` so a log line or a
traceback never shows it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class UserToken:
    """A linked player: the Telegram user id and the access token granted for it.

    Calls take both because replies name the user, not the token: the client matches each
    reply to its request by the user id.
    """

    user_id: int
    token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class AuthCodeSent:
    """The game sent the player a code; they give it to us to finish linking."""

    user_id: int


@dataclass(frozen=True, slots=True)
class GrantedToken:
    """The result of linking: store ``token`` (encrypted) and ``game_id`` for the player."""

    user_id: int
    game_id: str
    token: str = field(repr=False)

    @property
    def credentials(self) -> UserToken:
        return UserToken(self.user_id, self.token)


@dataclass(frozen=True, slots=True)
class OperationRequest:
    """We asked the player to allow ``operation``; their code plus ``request_id`` grants it."""

    request_id: str
    operation: str
    user_id: int


@dataclass(frozen=True, slots=True)
class OperationGranted:
    request_id: str
    user_id: int


@dataclass(frozen=True, slots=True)
class PaymentAuthorized:
    """The player got a confirmation code; ``debit_gold`` is what our balance will change by."""

    user_id: int
    transaction_id: str
    pouches: int
    fee_gold: int
    debit_gold: int


@dataclass(frozen=True, slots=True)
class PaymentDone:
    """The player's pouches moved to the app's balance."""

    user_id: int
    transaction_id: str
    pouches: int
    fee_gold: int
    debit_gold: int


@dataclass(frozen=True, slots=True)
class PayoutDone:
    """Pouches moved from the app's balance to the player."""

    user_id: int
    transaction_id: str
    pouches: int


@dataclass(frozen=True, slots=True)
class AppInfo:
    """The app's own account; ``balance`` is in gold (a pouch is 100 gold)."""

    balance: int
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Profile:
    """A player's brief profile. Fields the API adds later (v0.5 "extended" info) go to
    ``extra`` instead of being lost."""

    user_id: int
    user_name: str
    castle: str
    character_class: str
    level: int | None
    exp: int | None
    attack: int | None
    defense: int | None
    gold: int | None
    pouches: int | None
    mana: int | None
    stamina: int | None
    guild: str | None
    extra: Mapping[str, Any] = field(default_factory=dict)
    # Sent by the game beyond the v0.5 document (read by Cactiw/Dark-Desire-Order-Bot and
    # savely-krasovsky/go-chatwars-api): all optional.
    guild_tag: str | None = None
    guild_emoji: str | None = None
    hp: int | None = None
    max_hp: int | None = None


@dataclass(frozen=True, slots=True)
class Stock:
    """A player's stock: item name to quantity, in the API's order."""

    user_id: int
    items: Mapping[str, int]


# --- beyond the v0.5 document: the actions public clients use (see requests.py) -------------


@dataclass(frozen=True, slots=True)
class BasicInfo:
    """requestBasicInfo: the player's class, attack and defence only."""

    user_id: int
    character_class: str
    attack: int | None
    defense: int | None


@dataclass(frozen=True, slots=True)
class GearItem:
    """One equipped item. Only ``name`` is certain: one public client reads the slot as a
    bare name, another as an object with attack, defence, quality and condition."""

    name: str
    attack: int | None = None
    defense: int | None = None
    quality: str | None = None
    condition: str | None = None


@dataclass(frozen=True, slots=True)
class Gear:
    """requestGearInfo: what the player wears, by slot, and their ammunition counts."""

    user_id: int
    slots: Mapping[str, GearItem]
    ammo: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GuildInfo:
    """guildInfo: the caller's guild with its stock."""

    user_id: int
    tag: str
    name: str
    castle: str
    level: int | None
    glory: int | None
    members: int | None
    lobby: str | None
    stock_size: int | None
    stock_limit: int | None
    stock: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Recipe:
    """One recipe of the craftbook: the game's item id, its name and its price."""

    id: str
    name: str
    price: int | None


@dataclass(frozen=True, slots=True)
class Craftbook:
    """viewCraftbook: the recipes the player knows, alchemy and crafting."""

    user_id: int
    alchemy: tuple[Recipe, ...]
    craft: tuple[Recipe, ...]


@dataclass(frozen=True, slots=True)
class BuyOrderPlaced:
    """wantToBuy answered Ok: the exchange order for ``quantity`` of the item was placed
    (it spends the player's gold). ``item`` is what the reply named, code or name."""

    user_id: int
    transaction_id: str
    item: str
    quantity: int
