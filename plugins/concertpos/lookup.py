"""Finding a product or payment method from what a person typed: an id or a name prefix.

Kept apart from the client because it is pure: the sell command resolves names against the
cached lists, and the rules (exact name wins, a prefix must be unambiguous) are easiest to
test without a connection.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

from bot import clip

from .errors import AmbiguousName, UnknownPointOfSale
from .models import PointOfSale


class Named(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=Named)


def find_by_id_or_name(
    items: Sequence[T],
    query: int | str,
    *,
    unknown: Callable[[int | str], Exception],
    ambiguous: Callable[[str, list[str]], Exception],
) -> T:
    """The one item whose id equals ``query``, else whose name equals it (ignoring case),
    else whose name starts with it, provided only one does. Raises ``unknown(query)`` or
    ``ambiguous(query, names)`` otherwise."""
    text = str(query).strip()
    if not text:
        raise unknown(query)
    if isinstance(query, int) or text.isdigit():
        number = int(text)
        for item in items:
            if item.id == number:
                return item
    folded = text.casefold()
    exact = [item for item in items if item.name.casefold() == folded]
    if len(exact) == 1:
        return exact[0]
    matches = exact or [item for item in items if item.name.casefold().startswith(folded)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        # API text in a reply: clipped, control characters blanked
        raise ambiguous(text, [f"{clip(item.name, 60)} (#{item.id})" for item in matches])
    raise unknown(query)


def find_point_of_sale(items: Sequence[PointOfSale], query: str) -> PointOfSale:
    """A point of sale by id or name, like products; one the vendor's client would not offer
    (disabled, special, admin) cannot be picked."""
    found = find_by_id_or_name(
        [item for item in items if item.selectable],
        query,
        unknown=UnknownPointOfSale,
        ambiguous=AmbiguousName,
    )
    return found
