"""Reading ``pos sell``'s words: the original ``<product> [amount] [method]`` shape and the
list shape ``2 Hidden Ale, 1 Pretzel [by card]`` (issue 15)."""

from __future__ import annotations

import pytest

from bot import UserError
from bot_plugins.concertpos.order import Order, OrderLine, parse_order


@pytest.mark.parametrize(
    ("text", "lines", "method"),
    [
        ("beer 2 cash", [("beer", 2)], "cash"),
        ("brat 3 2", [("brat", 3)], "2"),
        ("4 1 cash", [("4", 1)], "cash"),
        ("5", [("5", 1)], None),
        ("'Tour Shirt' 1 cash", [("Tour Shirt", 1)], "cash"),
        ("hidden ale", [("hidden ale", 1)], None),
        ("2 beer", [("beer", 2)], None),
        ("2 Hidden Ale, 1 Pretzel", [("Hidden Ale", 2), ("Pretzel", 1)], None),
        ("2 Hidden Ale, 1 Pretzel by card", [("Hidden Ale", 2), ("Pretzel", 1)], "card"),
        (
            "2 Hidden Ale, Pretzel paid by 'Gift card'",
            [("Hidden Ale", 2), ("Pretzel", 1)],
            "Gift card",
        ),
    ],
)
def test_both_shapes_read_as_products_amounts_and_a_method(
    text: str, lines: list[tuple[str, int]], method: str | None
) -> None:
    assert parse_order(text, max_amount=100) == Order(
        tuple(OrderLine(product, amount) for product, amount in lines), method
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Name a product to sell"),
        ("beer 0 cash", "The amount must be a whole number greater than 0."),
        ("beer 1.5", "The amount must be a whole number greater than 0."),
        ("beer 1e3 cash", "The amount must be a whole number greater than 0."),
        ("101 beer", "At most 100 of one product can be sold at once."),
        ("2 beer,", "An item between two commas is empty"),
        ("2 beer, 3", "Which product should 3 be?"),
        (", ".join(["1 beer"] * 21), "At most 20 different products"),
        ("'beer", "A quote is not closed"),
    ],
)
def test_bad_orders_are_refused_with_a_plain_sentence(text: str, message: str) -> None:
    with pytest.raises(UserError) as caught:
        parse_order(text, max_amount=100)
    assert str(caught.value).startswith(message)
