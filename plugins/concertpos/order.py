"""What a seller typed after ``pos sell``, read as products, amounts and a payment method.

Kept apart from the command because it is pure and has two shapes to tell apart:

* the original one, ``pos sell <product> [amount] [method]`` (``pos sell beer 2 cash``,
  ``pos sell 'Tour Shirt' 1 2``), where a product name with spaces needs quotes, and
* a list, ``pos sell 2 Hidden Ale, 1 Pretzel [by card]``: items separated by commas, each
  an amount and a name (no quotes needed); the method, if given, follows ``by``.

A line is a list when it has a comma, or when it starts with an amount followed by a word
that is not a number (``2 beer``). ``4 1 cash`` stays the original shape (product 4).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from bot import UserError

#: a word that looks like someone meant a number (so "1.5" is a bad amount, not a name)
_NUMBERISH = re.compile(r"^[+-]?[\d.,]*\d[\d.,]*(?:[eE][+-]?\d+)?$")
_METHOD = re.compile(r"^(?P<items>.*?)\s+(?:paid\s+)?by\s+(?P<method>\S.*)$", re.IGNORECASE)
#: more items than this in one sale is a paste accident, not a till
MAX_ITEMS = 20


@dataclass(frozen=True, slots=True)
class OrderLine:
    """One product as typed (an id or a name) and how many."""

    product: str
    amount: int


@dataclass(frozen=True, slots=True)
class Order:
    lines: tuple[OrderLine, ...]
    method: str | None


def _amount(word: str, max_amount: int) -> int:
    if not word.isdigit() or int(word) < 1:
        raise UserError("The amount must be a whole number greater than 0.")
    amount = int(word)
    if amount > max_amount:
        raise UserError(f"At most {max_amount} of one product can be sold at once.")
    return amount


def _words(text: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError:
        raise UserError("A quote is not closed; put quotes around the whole name.") from None


def _is_list(words: list[str], text: str) -> bool:
    if "," in text:
        return True
    return len(words) >= 2 and words[0].isdigit() and not _NUMBERISH.match(words[1])


def parse_order(text: str, *, max_amount: int) -> Order:
    """The order in ``text``; :class:`~bot.UserError` with a plain sentence if it is not one."""
    text = text.strip()
    words = _words(text)
    if not words:
        raise UserError("Name a product to sell, e.g. 2 Beer, 1 Fries.")
    if not _is_list(words, text):
        return _single(words, max_amount)
    method = None
    found = _METHOD.match(text)
    if found:
        text, method = found["items"], found["method"].strip().strip("'\"")
    parts = [part.strip() for part in text.split(",")]
    if any(not part for part in parts):
        raise UserError("An item between two commas is empty; write e.g. 2 Beer, 1 Fries.")
    if len(parts) > MAX_ITEMS:
        raise UserError(f"At most {MAX_ITEMS} different products can be sold at once.")
    lines = []
    for part in parts:
        item = _words(part)
        if item[0].isdigit() or (_NUMBERISH.match(item[0]) and len(item) > 1):
            amount, name = _amount(item[0], max_amount), " ".join(item[1:])
        else:
            amount, name = 1, " ".join(item)
        if not name:
            raise UserError(f"Which product should {amount} be? Write e.g. 2 Beer.")
        lines.append(OrderLine(name, amount))
    return Order(tuple(lines), method)


def _single(words: list[str], max_amount: int) -> Order:
    """``<product> [amount] [method]``, read from the end so the name may be several words."""
    method = None
    if len(words) >= 3 and _NUMBERISH.match(words[-2]):
        method = words[-1]
        words = words[:-1]
    if len(words) >= 2 and _NUMBERISH.match(words[-1]):
        amount = _amount(words[-1], max_amount)
        words = words[:-1]
    else:
        amount = 1
    return Order((OrderLine(" ".join(words), amount),), method)
