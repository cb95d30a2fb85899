"""The market feeds as chat alerts, with ``[item] [max price]`` filters.

Topics: ``chatwars.deals``, ``chatwars.offers``, ``chatwars.digest``, ``chatwars.shops``, and
(from the feeds beyond the document) ``chatwars.duels`` (filter words match a duelist's name
or guild tag) and ``chatwars.auction`` (lots: item and price). A
chat subscribes with a filter such as ``iron ore 5`` (item name contains "iron ore", price at
most 5 gold), ``charcoal`` or ``10``; every event carries ``offers`` (item, price) pairs in its
data and the topics' matcher applies the filter to them (``filters.py``, with the index that
spares the router a check of every filter).

The deals feed is high-volume, so nothing is published as it arrives: feed messages are
gathered for ``alert_interval`` seconds and then published in one synchronous burst. The
alert router gathers a burst for a chat into one message, so each chat gets at most one
message per interval listing what matches its filters. Deals are grouped by item and price,
offers listed one per line, and the digest and the yellow pages, which are snapshots, keep
only the latest one of the interval. Publishing from a timer also means nothing is published
before the plugin's topics (and their matchers) are registered, which happens only after
start-up returns.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bot import Topic

from .feeds import (
    AuctionDigest,
    Deal,
    Digest,
    Duel,
    Duelist,
    FeedKind,
    FeedMessage,
    Lot,
    Offer,
    Shop,
    YellowPages,
)
from .filters import MarketFilter as MarketFilter  # re-exported: the commands read it here
from .filters import MarketIndex, market_matches
from .filters import stored_filter as stored_filter

log = logging.getLogger(__name__)

DEALS = "chatwars.deals"
OFFERS = "chatwars.offers"
DIGEST = "chatwars.digest"
SHOPS = "chatwars.shops"
DUELS = "chatwars.duels"
AUCTION = "chatwars.auction"

#: the word a chat types -> the topic
FEED_TOPICS = {
    "deals": DEALS,
    "offers": OFFERS,
    "digest": DIGEST,
    "shops": SHOPS,
    "duels": DUELS,
    "auction": AUCTION,
}
#: the word a chat types -> the feed that fills it
FEED_KINDS = {
    "deals": FeedKind.DEALS,
    "offers": FeedKind.OFFERS,
    "digest": FeedKind.DIGEST,
    "shops": FeedKind.YELLOW_PAGES,
    "duels": FeedKind.DUELS,
    "auction": FeedKind.AU_DIGEST,
}

#: offers kept per interval; beyond it they are counted, not listed
MAX_OFFERS = 500
#: duels kept per interval (the arena is busy); beyond it they are counted
MAX_DUELS = 500
#: lots published from one auction snapshot
MAX_LOTS = 200
#: longest name shown from a feed
_MAX_NAME = 40
#: offers listed per shop
_SHOP_OFFERS = 6
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u200e\u200f\u202a-\u202e]")
_MASS_MENTION = re.compile(r"@(everyone|here)", re.IGNORECASE)

Publish = Callable[[str, str, dict[str, Any]], int]


# Cached: a deal's text cleans five names (item, castles, players), and the deals feed repeats
# the same few thousand; two regex passes each were most of building a deal's line.
@functools.lru_cache(maxsize=8192)
def clean(text: str, limit: int = _MAX_NAME) -> str:
    """A name from the feed made safe to post: no control characters or mass mentions."""
    text = _CONTROL.sub("", text).strip()
    text = _MASS_MENTION.sub("@\u200b\\1", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- topics


def _topic(name: str, description: str) -> Topic:
    # Thousands of chats filter the deals feed by item and price: the index makes a deal cost
    # a lookup per run of words in its item name, not a check of every distinct filter.
    return Topic(name, description, market_matches, index=MarketIndex)


TOPICS = [
    _topic(DEALS, "ChatWars exchange deals, gathered per interval (filter: [item] [max price])"),
    _topic(OFFERS, "New ChatWars exchange offers (filter: [item] [max price])"),
    _topic(DIGEST, "The ChatWars exchange digest, every few minutes (filter: [item] [max price])"),
    _topic(SHOPS, "Open ChatWars shops and their prices (filter: [item] [max price])"),
    _topic(DUELS, "ChatWars arena duels, gathered per interval (filter: a name or guild tag)"),
    _topic(AUCTION, "ChatWars auction lots, every few minutes (filter: [item] [max price])"),
]


# --------------------------------------------------------------------------- texts


def _who(castle: str, name: str) -> str:
    return f"{clean(castle, 4)}{clean(name)}"


@dataclass(slots=True)
class _DealGroup:
    item: str
    price: int
    qty: int = 0
    count: int = 0
    first: Deal | None = None

    def text(self) -> str:
        head = f"Deal: {self.qty} × {clean(self.item)} at {self.price}💰"
        if self.count == 1 and self.first is not None:
            d = self.first
            return (
                f"{head}, {_who(d.seller_castle, d.seller_name)} → "
                f"{_who(d.buyer_castle, d.buyer_name)}"
            )
        return f"{head} ({self.count} deals)"


def offer_text(offer: Offer) -> str:
    return (
        f"Offer: {_who(offer.seller_castle, offer.seller_name)} sells {offer.qty} × "
        f"{clean(offer.item)} at {offer.price}💰"
    )


def digest_texts(digest: Digest) -> Iterable[tuple[str, dict[str, Any]]]:
    for entry in digest.entries:
        prices = ", ".join(str(p) for p in entry.prices[:5])
        more = "…" if len(entry.prices) > 5 else ""
        best = entry.best_price
        head = f"Exchange: {clean(entry.name)}"
        text = (
            f"{head} from {best}💰 ({prices}{more})" if best is not None else f"{head}: no offers"
        )
        yield text, {"offers": [(entry.name, best)]}


def shop_text(shop: Shop) -> str:
    offers = ", ".join(f"{clean(o.item)} {o.price}💰" for o in shop.offers[:_SHOP_OFFERS])
    if len(shop.offers) > _SHOP_OFFERS:
        offers += f", +{len(shop.offers) - _SHOP_OFFERS} more"
    link = re.sub(r"[^A-Za-z0-9]", "", shop.link)[:16]
    return (
        f"Shop {clean(shop.kind, 4)} {clean(shop.name)} of "
        f"{_who(shop.owner_castle, shop.owner_name)} (/ws_{link}): {offers or 'no offers'}"
    )


def _duelist(d: Duelist) -> str:
    tag = f"[{clean(d.tag, 12)}]" if d.tag else ""
    level = f" ({d.level})" if d.level is not None else ""
    return f"{clean(d.castle, 4)}{tag}{clean(d.name)}{level}"


def duel_text(duel: Duel) -> str:
    kind = "Guild duel" if duel.is_guild_duel else "Challenge" if duel.is_challenge else "Duel"
    return f"{kind}: {_duelist(duel.winner)} beat {_duelist(duel.loser)}"


def duel_data(duel: Duel) -> dict[str, Any]:
    """Names and tags as the "items" the filter matches (no price)."""
    names: list[tuple[str, int | None]] = []
    for d in (duel.winner, duel.loser):
        names.append((d.name, None))
        if d.tag:
            names.append((d.tag, None))
    return {"offers": names}


def lot_text(lot: Lot) -> str:
    quality = f" ({clean(lot.quality, 12)})" if lot.quality else ""
    status = f", {clean(lot.status, 16)}" if lot.status else ""
    return (
        f"Auction: {clean(lot.item)}{quality} by {_who(lot.seller_castle, lot.seller_name)} "
        f"at {lot.price}💰{status}"
    )


# --------------------------------------------------------------------------- publishing


@dataclass
class FeedAlerts:
    """Turns parsed feed messages into alerts, gathered and published once per interval."""

    publish: Publish
    interval: float
    _deals: dict[tuple[str, int], _DealGroup] = field(default_factory=dict)
    _offers: list[Offer] = field(default_factory=list)
    _offers_left_out: int = 0
    _digest: Digest | None = None
    _pages: YellowPages | None = None
    _duels: list[Duel] = field(default_factory=list)
    _duels_left_out: int = 0
    _auction: AuctionDigest | None = None
    #: feed messages handled, for status and tests
    received: int = 0

    def on_feed(self, message: FeedMessage) -> None:
        """The client's feed handler: called before the message is acknowledged."""
        self.received += 1
        if isinstance(message, Deal):
            key = (message.item.casefold(), message.price)
            group = self._deals.get(key)
            if group is None:
                group = self._deals[key] = _DealGroup(message.item, message.price, first=message)
            group.qty += message.qty
            group.count += 1
        elif isinstance(message, Offer):
            if len(self._offers) < MAX_OFFERS:
                self._offers.append(message)
            else:
                self._offers_left_out += 1
        elif isinstance(message, Digest):
            self._digest = message
        elif isinstance(message, YellowPages):
            self._pages = message
        elif isinstance(message, Duel):
            if len(self._duels) < MAX_DUELS:
                self._duels.append(message)
            else:
                self._duels_left_out += 1
        elif isinstance(message, AuctionDigest):
            self._auction = message

    @property
    def waiting(self) -> int:
        """Deal groups, offers and snapshots gathered and not yet published."""
        return (
            len(self._deals)
            + len(self._offers)
            + (self._digest is not None)
            + (self._pages is not None)
            + len(self._duels)
            + (self._auction is not None)
        )

    def flush(self) -> int:
        """Publish what was gathered, in one burst (so each chat gets one message)."""
        deals, self._deals = self._deals, {}
        offers, self._offers = self._offers, []
        left_out, self._offers_left_out = self._offers_left_out, 0
        digest, self._digest = self._digest, None
        pages, self._pages = self._pages, None
        duels, self._duels = self._duels, []
        duels_left_out, self._duels_left_out = self._duels_left_out, 0
        auction, self._auction = self._auction, None
        events: list[tuple[str, str, dict[str, Any]]] = []
        for group in sorted(deals.values(), key=lambda g: (g.item.casefold(), g.price)):
            events.append((DEALS, group.text(), {"offers": [(group.item, group.price)]}))
        for offer in offers:
            events.append((OFFERS, offer_text(offer), {"offers": [(offer.item, offer.price)]}))
        if digest is not None:
            events += [(DIGEST, text, data) for text, data in digest_texts(digest)]
        if pages is not None:
            for shop in pages.shops:
                data = {"offers": [(o.item, o.price) for o in shop.offers]}
                events.append((SHOPS, shop_text(shop), data))
        events += [(DUELS, duel_text(duel), duel_data(duel)) for duel in duels]
        if auction is not None:
            events += [
                (AUCTION, lot_text(lot), {"offers": [(lot.item, lot.price)]})
                for lot in auction.lots[:MAX_LOTS]
            ]
        for topic, text, data in events:
            self.publish(topic, text, data)
        if duels_left_out:
            log.info(
                "ChatWars: %d duels in one interval were not listed (too many)", duels_left_out
            )
        if left_out:
            log.info("ChatWars: %d offers in one interval were not listed (too many)", left_out)
        return len(events)

    async def run(self) -> None:
        """Publish every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.flush()
            except Exception:
                log.exception("ChatWars: publishing market alerts failed")
