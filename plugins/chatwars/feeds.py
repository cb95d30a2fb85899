"""The public market feeds: what each message means, parsed into dataclasses.

Feeds arrive on fan-out exchanges the app only reads from (``<app>_deals`` and so on), or
(since 2020, how public bots read them) as Kafka topics ``cw3-deals`` ... on the ChatWars
digest service (``kafka_feeds.py``). They are parsed here, apart from both consumers, so the
alert layer and the simulator share one reading of the shapes; a message that does not fit
raises :class:`FeedFormatError`, which the consumer logs and drops without stopping.

Four feeds are in the v0.5 document. ``duels`` and ``au_digest`` are not: their shapes are
those savely-krasovsky/go-chatwars-api reads (``Duel``, ``AuctionDigestItem`` in types.go);
Cactiw/Dark-Desire-Order-Bot consumes ``duels`` from Kafka too.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .parsing import FormatProblem, as_int, as_list, as_mapping, as_str, optional_int, require


class FeedKind(enum.StrEnum):
    """A feed, named as the API's exchange (the app's queue is ``<app>_<value>``)."""

    DEALS = "deals"
    OFFERS = "offers"
    DIGEST = "sex_digest"
    YELLOW_PAGES = "yellow_pages"
    DUELS = "duels"
    AU_DIGEST = "au_digest"


#: the feeds of the v0.5 document (the AMQP default: an app's queue exists only on request)
DOCUMENTED_FEEDS = (FeedKind.DEALS, FeedKind.OFFERS, FeedKind.DIGEST, FeedKind.YELLOW_PAGES)


class FeedFormatError(ValueError):
    """A feed message is not JSON or not shaped as documented."""


@dataclass(frozen=True, slots=True)
class Deal:
    """A confirmed sale on the exchange (the high-volume feed)."""

    seller_id: str
    seller_castle: str
    seller_name: str
    buyer_id: str
    buyer_castle: str
    buyer_name: str
    item: str
    qty: int
    price: int

    kind = FeedKind.DEALS


@dataclass(frozen=True, slots=True)
class Offer:
    """A new "want to sell" offer as it comes online."""

    seller_id: str
    seller_castle: str
    seller_name: str
    item: str
    qty: int
    price: int

    kind = FeedKind.OFFERS


@dataclass(frozen=True, slots=True)
class DigestEntry:
    """One item of the exchange digest with its cheapest prices, lowest first."""

    name: str
    prices: tuple[int, ...]

    @property
    def best_price(self) -> int | None:
        return min(self.prices) if self.prices else None


@dataclass(frozen=True, slots=True)
class Digest:
    """The periodic top-offers digest (``sex_digest``, about every 5 minutes)."""

    entries: tuple[DigestEntry, ...]

    kind = FeedKind.DIGEST


@dataclass(frozen=True, slots=True)
class ShopOffer:
    item: str
    price: int
    mana: int | None


@dataclass(frozen=True, slots=True)
class Shop:
    """An open shop from the yellow pages; ``link`` is the code players use to visit it."""

    link: str
    name: str
    owner_name: str
    owner_castle: str
    kind: str
    mana: int | None
    offers: tuple[ShopOffer, ...]


@dataclass(frozen=True, slots=True)
class YellowPages:
    """Every published open shop with its offers (about every 5 minutes)."""

    shops: tuple[Shop, ...]

    kind = FeedKind.YELLOW_PAGES


@dataclass(frozen=True, slots=True)
class Duelist:
    id: str
    name: str
    tag: str | None
    castle: str
    level: int | None
    hp: int | None


@dataclass(frozen=True, slots=True)
class Duel:
    """One finished arena duel (``duels``)."""

    winner: Duelist
    loser: Duelist
    is_challenge: bool
    is_guild_duel: bool

    kind = FeedKind.DUELS


@dataclass(frozen=True, slots=True)
class Lot:
    """One auction lot of the digest; ``status`` and the buyer once it ended."""

    lot_id: str
    item: str
    seller_name: str
    seller_castle: str
    price: int
    quality: str | None
    status: str | None
    buyer_name: str | None
    buyer_castle: str | None


@dataclass(frozen=True, slots=True)
class AuctionDigest:
    """The auction's lots (``au_digest``), a periodic snapshot."""

    lots: tuple[Lot, ...]

    kind = FeedKind.AU_DIGEST


FeedMessage = Deal | Offer | Digest | YellowPages | Duel | AuctionDigest


def _deal(data: Mapping[str, Any]) -> Deal:
    # The deals feed is the busy one and nearly every message is shaped as documented: take
    # it as it is when every field already has its type, and read it leniently otherwise.
    get = data.get
    seller_id, buyer_id, item = get("sellerId"), get("buyerId"), get("item")
    qty, price = get("qty"), get("price")
    names = (get("sellerCastle", ""), get("sellerName", ""), get("buyerCastle", ""))
    buyer_name = get("buyerName", "")
    if (
        type(seller_id) is str
        and type(buyer_id) is str
        and type(item) is str
        and type(qty) is int
        and type(price) is int
        and type(buyer_name) is str
        and all(type(n) is str for n in names)
    ):
        return Deal(seller_id, names[0], names[1], buyer_id, names[2], buyer_name, item, qty, price)
    return _lenient_deal(data)


def _lenient_deal(data: Mapping[str, Any]) -> Deal:
    def text(key: str) -> str:
        return as_str(data.get(key, ""), f"deal.{key}")

    return Deal(
        seller_id=as_str(require(data, "sellerId", "deal"), "deal.sellerId"),
        seller_castle=text("sellerCastle"),
        seller_name=text("sellerName"),
        buyer_id=as_str(require(data, "buyerId", "deal"), "deal.buyerId"),
        buyer_castle=text("buyerCastle"),
        buyer_name=text("buyerName"),
        item=as_str(require(data, "item", "deal"), "deal.item"),
        qty=as_int(require(data, "qty", "deal"), "deal.qty"),
        price=as_int(require(data, "price", "deal"), "deal.price"),
    )


def _offer(data: Mapping[str, Any]) -> Offer:
    return Offer(
        seller_id=as_str(require(data, "sellerId", "offer"), "offer.sellerId"),
        seller_castle=as_str(data.get("sellerCastle", ""), "offer.sellerCastle"),
        seller_name=as_str(data.get("sellerName", ""), "offer.sellerName"),
        item=as_str(require(data, "item", "offer"), "offer.item"),
        qty=as_int(require(data, "qty", "offer"), "offer.qty"),
        price=as_int(require(data, "price", "offer"), "offer.price"),
    )


def _digest(data: Any) -> Digest:
    entries = []
    for i, raw in enumerate(as_list(data, "digest")):
        entry = as_mapping(raw, f"digest[{i}]")
        prices = as_list(entry.get("prices", []), f"digest[{i}].prices")
        entries.append(
            DigestEntry(
                name=as_str(require(entry, "name", f"digest[{i}]"), f"digest[{i}].name"),
                prices=tuple(as_int(p, f"digest[{i}].prices") for p in prices),
            )
        )
    return Digest(tuple(entries))


def _shop(raw: Any, where: str) -> Shop:
    shop = as_mapping(raw, where)
    offers = []
    for j, raw_offer in enumerate(as_list(shop.get("offers", []), f"{where}.offers")):
        offer = as_mapping(raw_offer, f"{where}.offers[{j}]")
        offers.append(
            ShopOffer(
                item=as_str(require(offer, "item", where), f"{where}.offers[{j}].item"),
                price=as_int(require(offer, "price", where), f"{where}.offers[{j}].price"),
                mana=optional_int(offer.get("mana"), f"{where}.offers[{j}].mana"),
            )
        )
    return Shop(
        link=as_str(require(shop, "link", where), f"{where}.link"),
        name=as_str(shop.get("name", ""), f"{where}.name"),
        owner_name=as_str(shop.get("ownerName", ""), f"{where}.ownerName"),
        owner_castle=as_str(shop.get("ownerCastle", ""), f"{where}.ownerCastle"),
        kind=as_str(shop.get("kind", ""), f"{where}.kind"),
        mana=optional_int(shop.get("mana"), f"{where}.mana"),
        offers=tuple(offers),
    )


def _yellow_pages(data: Any) -> YellowPages:
    shops = as_list(data, "yellow_pages")
    return YellowPages(tuple(_shop(raw, f"yellow_pages[{i}]") for i, raw in enumerate(shops)))


def _optional_str(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    return as_str(value, f"{where}.{key}") if value not in (None, "") else None


def _duelist(raw: Any, where: str) -> Duelist:
    data = as_mapping(raw, where)
    return Duelist(
        id=as_str(data.get("id", ""), f"{where}.id"),
        name=as_str(require(data, "name", where), f"{where}.name"),
        tag=_optional_str(data, "tag", where),
        castle=as_str(data.get("castle", ""), f"{where}.castle"),
        level=optional_int(data.get("level"), f"{where}.level"),
        hp=optional_int(data.get("hp"), f"{where}.hp"),
    )


def _duel(data: Mapping[str, Any]) -> Duel:
    return Duel(
        winner=_duelist(require(data, "winner", "duel"), "duel.winner"),
        loser=_duelist(require(data, "loser", "duel"), "duel.loser"),
        is_challenge=data.get("isChallenge") is True,
        is_guild_duel=data.get("isGuildDuel") is True,
    )


def _auction(data: Any) -> AuctionDigest:
    lots = []
    for i, raw in enumerate(as_list(data, "au_digest")):
        where = f"au_digest[{i}]"
        lot = as_mapping(raw, where)
        lots.append(
            Lot(
                lot_id=as_str(lot.get("lotId", ""), f"{where}.lotId"),
                item=as_str(require(lot, "itemName", where), f"{where}.itemName"),
                seller_name=as_str(lot.get("sellerName", ""), f"{where}.sellerName"),
                seller_castle=as_str(lot.get("sellerCastle", ""), f"{where}.sellerCastle"),
                price=as_int(require(lot, "price", where), f"{where}.price"),
                quality=_optional_str(lot, "quality", where),
                status=_optional_str(lot, "status", where),
                buyer_name=_optional_str(lot, "buyerName", where),
                buyer_castle=_optional_str(lot, "buyerCastle", where),
            )
        )
    return AuctionDigest(tuple(lots))


def parse_feed(kind: FeedKind, body: bytes | str) -> FeedMessage:
    """Read one feed message; raises FeedFormatError with a reason fit for the log."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise FeedFormatError(f"{kind} message is not JSON: {exc}") from None
    try:
        match kind:
            case FeedKind.DEALS:
                return _deal(as_mapping(data, "deal"))
            case FeedKind.OFFERS:
                return _offer(as_mapping(data, "offer"))
            case FeedKind.DIGEST:
                return _digest(data)
            case FeedKind.YELLOW_PAGES:
                return _yellow_pages(data)
            case FeedKind.DUELS:
                return _duel(as_mapping(data, "duel"))
            case FeedKind.AU_DIGEST:
                return _auction(data)
    except FormatProblem as exc:
        raise FeedFormatError(f"{kind} message: {exc}") from None
    raise FeedFormatError(f"unknown feed {kind!r}")
