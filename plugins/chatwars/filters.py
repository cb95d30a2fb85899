"""Market filters (``[item] [max price]``) and the index that matches a feed event to them.

Kept apart from the alert texts in ``alerts.py`` because the deals feed makes matching the hot
path: 10,000 chats filtering deals by item hold ~5,000 distinct filters, and checking each one
against each deal (~1 µs a check) cost more than everything else the bot does with the deal.
:class:`MarketIndex` answers the same question as :func:`market_matches` by lookup instead:
the filters are kept by their item phrase, each phrase's priced filters sorted by their price
limit, so a deal costs one dict lookup per run of words in its item name and one bisection, and
yields only filters that match.
"""

from __future__ import annotations

import functools
import re
from bisect import bisect_left
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from bot import UserError

M = TypeVar("M", bound=Hashable)

_PRICE = re.compile(r"[+-]?\d+")


@dataclass(frozen=True, slots=True)
class MarketFilter:
    """``[item] [max price]``: either part may be left out."""

    item: str | None = None
    max_price: int | None = None

    @classmethod
    def parse(cls, text: str | None) -> MarketFilter:
        """Read what a chat user typed; UserError explains a bad price."""
        words = (text or "").lower().split()
        max_price = None
        if words and _PRICE.fullmatch(words[-1]):
            max_price = int(words.pop())
            if max_price < 0:
                raise UserError("The maximum price cannot be negative.")
        item = " ".join(words) or None
        if item is not None and len(item) > 60:
            raise UserError("That item name is too long.")
        return cls(item, max_price)

    @property
    def text(self) -> str:
        """The form stored with the subscription ("" for no filter)."""
        parts = [
            p for p in (self.item, None if self.max_price is None else str(self.max_price)) if p
        ]
        return " ".join(parts)

    def describe(self) -> str:
        """The filter in the words ``cw alerts`` lists it with."""
        if self.item and self.max_price is not None:
            return f"{self.item} up to {self.max_price}💰"
        if self.item:
            return self.item
        if self.max_price is not None:
            return f"anything up to {self.max_price}💰"
        return "everything"

    def matches(self, item: str, price: int | None) -> bool:
        """The filter's item words stand as whole words, in order, in the item's name."""
        if self.item is not None and f" {self.item} " not in _spaced(item):
            return False
        return self.max_price is None or (price is not None and price <= self.max_price)


@functools.lru_cache(maxsize=4096)
def words(name: str) -> tuple[str, ...]:
    """An item name as lower-case words ("Bone Pelt" -> ("bone", "pelt"))."""
    return tuple(name.lower().split())


@functools.lru_cache(maxsize=4096)
def _spaced(name: str) -> str:
    return f" {' '.join(words(name))} "


@functools.lru_cache(maxsize=4096)
def phrases(name: str) -> tuple[str | None, ...]:
    """The filter items an item name satisfies: every run of its words, and None (no item).

    "Bone powder" -> (None, "bone", "bone powder", "powder"): exactly the items for which
    :meth:`MarketFilter.matches` finds the filter's words, whole and in order, in the name.
    """
    w = words(name)
    runs = {" ".join(w[i:j]) for i in range(len(w)) for j in range(i + 1, len(w) + 1)}
    return (None, *sorted(runs))


# Larger than the filters a busy bot holds (the benchmark's 10,000 chats type ~4,900): the
# commands read it for every listed subscription, and a miss parses the text again.
@functools.lru_cache(maxsize=16384)
def stored_filter(text: str) -> MarketFilter:
    """A subscription's filter as stored; never raises (it was checked when typed)."""
    try:
        return MarketFilter.parse(text)
    except UserError:
        return MarketFilter(text.lower().strip() or None)


def market_matches(filter: str, text: str, data: dict[str, Any]) -> bool:
    """The topics' matcher: does any (item, price) pair of the event pass the filter?"""
    wanted = stored_filter(filter)
    offers = data.get("offers")
    if not isinstance(offers, list):
        return False
    return any(wanted.matches(str(item), price) for item, price in offers)


class _PriceLadder(Generic[M]):
    """The chats of one item phrase: those without a price limit, and the rest by limit."""

    __slots__ = ("limits", "priced", "unpriced")

    def __init__(self) -> None:
        self.unpriced: list[M] = []
        #: ascending price limits, and the chat of each at the same position
        self.limits: list[int] = []
        self.priced: list[M] = []

    def add(self, max_price: int | None, member: M) -> None:
        if max_price is None:
            self.unpriced.append(member)
            return
        at = bisect_left(self.limits, max_price)
        self.limits.insert(at, max_price)
        self.priced.insert(at, member)

    def collect(self, price: int | None, into: list[M]) -> None:
        """Append the chats a deal at ``price`` passes (limit >= price) to ``into``."""
        into += self.unpriced
        if price is not None and self.priced:
            into += self.priced[bisect_left(self.limits, price) :]


class MarketIndex(Generic[M]):
    """The market topics' filters, by item phrase and price: ``matching`` gives what matches.

    The alert router hands it each filtered subscription (:class:`bot.alerts.FilterIndex`),
    the filter with a member standing for the chat, and fans an event out to the members
    ``matching`` returns: one slice per phrase of the item, not one step per filter. It must
    give the same answer as :func:`market_matches` for every filter, which the tests check.
    """

    __slots__ = ("_ladders",)

    def __init__(self) -> None:
        self._ladders: dict[str | None, _PriceLadder[M]] = {}

    def add(self, filter: str, member: M) -> None:
        """Index one subscription: ``member`` wants the events ``filter`` passes."""
        wanted = stored_filter(filter)
        ladder = self._ladders.get(wanted.item)
        if ladder is None:
            ladder = self._ladders[wanted.item] = _PriceLadder()
        ladder.add(wanted.max_price, member)

    def matching(self, text: str, data: dict[str, Any]) -> list[M]:
        """The members whose filter passes any (item, price) pair of the event.

        A member with several filters comes once per filter that passes (the router sees to
        it that its chat gets the event once), but never twice for one filter.
        """
        offers = data.get("offers")
        if not isinstance(offers, list):
            return []
        ladders = self._ladders
        found: list[M] = []
        for item, price in offers:
            for phrase in phrases(str(item)):
                ladder = ladders.get(phrase)
                if ladder is not None:
                    ladder.collect(price, found)
        # Two offers of one event (a shop's) may pass the same filter: its chat gets it once.
        return found if len(offers) == 1 else list(dict.fromkeys(found))
