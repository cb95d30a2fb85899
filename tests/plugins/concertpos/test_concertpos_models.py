"""Tolerant parsing of replies, name lookup and error mapping: the pure parts of the client."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bot.errors import ServiceError
from bot_plugins.concertpos.errors import (
    AmbiguousName,
    ConcertPOSAuthError,
    ConcertPOSLicenseError,
    ConcertPOSRefused,
    ConcertPOSRequestError,
    ProtocolError,
    RateLimited,
    UnknownProduct,
    error_from_reply,
)
from bot_plugins.concertpos.lookup import find_by_id_or_name
from bot_plugins.concertpos.models import (
    Deposit,
    InstanceConfig,
    License,
    PaymentMethod,
    Product,
    TransactionList,
    parse_items_booked,
    parse_products,
)
from bot_plugins.concertpos.replies import transactions_text


def test_products_accept_strings_flags_and_comma_decimals() -> None:
    product = Product.parse(
        {"ID": "7", "ProductName": " Mate ", "Price": "3,20", "Deposit": "1", "CrewBlocked": 0}
    )
    assert product == Product(7, "Mate", Decimal("3.20"), deposit=True, crew_blocked=False)
    keyed = parse_products({"Products": {"1": {"ID": 1, "ProductName": "A", "Price": 1}}})
    assert [p.id for p in keyed] == [1]
    assert parse_products({}) == ()
    method = PaymentMethod.parse({"ID": 1, "Payment": "Cash", "color": "#fff"})
    assert method == PaymentMethod(1, "Cash", "#fff")


def test_a_reply_that_is_not_a_list_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_products({"Products": "oops"})
    assert caught.value.code == "bad_reply" and isinstance(caught.value, ServiceError)
    with pytest.raises(ProtocolError):
        parse_products({"Products": [{"ID": 1, "Price": 1}] * 5001})


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"ID": 1, "ProductName": "A", "Price": "free"}, "a product's Price is not an amount"),
        ({"ID": 1, "ProductName": "A", "Price": None}, "a product's Price is not an amount"),
        ({"ID": 1, "ProductName": "A", "Price": "NaN"}, "a product's Price is not an amount"),
        ({"ID": 1, "ProductName": "A", "Price": 1e308}, "a product's Price is out of range"),
        ({"ID": 1, "ProductName": "A", "Price": "-1e10"}, "a product's Price is out of range"),
        ({"ID": 1, "ProductName": "A", "Price": "9" * 100}, "a product's Price is not an amount"),
    ],
)
def test_a_product_with_unbelievable_values_is_kept_flagged(
    entry: dict[str, object], problem: str
) -> None:
    """Issue 14, item 9: one bad product must not break the listing of the others."""
    good = {"ID": 2, "ProductName": "B", "Price": "2.50"}
    bad, fine = parse_products({"Products": [entry, good]})
    assert bad.id == 1 and bad.name == "A" and bad.problem and bad.problem.startswith(problem)
    assert bad.price == 0
    assert fine.problem is None and fine.price == Decimal("2.50")


@pytest.mark.parametrize("entry", [5, {"ID": "x"}, {"ID": 2**60}, {"ID": None}, "A"])
def test_a_product_without_a_readable_id_is_left_out(entry: object) -> None:
    good = {"ID": 2, "ProductName": "B", "Price": 2}
    assert [p.id for p in parse_products({"Products": [entry, good]})] == [2]


def test_license_flags_limits_dates_and_masking() -> None:
    license_ = License.parse(
        {
            "License": {
                "Name": "Fest",
                "LicenseKey": "ABCD-EFGH-IJKL",
                "Active": "0",
                "Type": "Basic",
                "DeviceLimit": "3",
                "TicketLimit": "0",
                "Created": "2020-01-01T00:00:00.000Z",
                "Expires": "2021-01-01T00:00:00.000Z",
            }
        }
    )
    assert not license_.active and license_.device_limit == 3 and license_.ticket_limit is None
    assert license_.masked_key == "AB…KL" and "ABCD" not in repr(license_)
    active = License.parse({"License": {"Active": "1", "Created": "2020-01-01T00:00:00Z"}})
    assert active.valid_at(datetime(2024, 1, 1, tzinfo=UTC))
    assert not active.valid_at(datetime(2019, 1, 1))  # naive times compare too
    assert not License.parse({"License": {"Active": 1, "Expires": "2021-01-01"}}).valid_at(
        datetime(2022, 1, 1)
    )


def test_transactions_deposit_config_and_items() -> None:
    listed = TransactionList.parse(
        {
            "Transactions": [
                {
                    "ID": 9215,
                    "Payment_ID": 1,
                    "PointOfSaleID": 1,
                    "Product_ID": 15,
                    "AmountProduct": 1,
                    "AmountMoney": -1,
                    "timestamp": "2020-05-13T15:27:02.000Z",
                    "hash": "ab",
                    "Note": None,
                }
            ]
        }
    )
    assert listed.count == 1 and listed.transactions[0].amount_money == Decimal(-1)
    assert listed.transactions[0].timestamp == datetime(2020, 5, 13, 15, 27, 2, tzinfo=UTC)
    assert Deposit.parse({"Deposit": {"Price": 2.5}}).price == Decimal("2.5")
    assert Deposit.parse({"Deposit": "1.00"}).price == Decimal("1.00")
    config = InstanceConfig.parse(
        {"Config": [{"Key": "api_token", "Value": "tok-123456789"}, {"Key": "x", "Value": 1}]}
    )
    assert config.masked() == {"api_token": "to…89", "x": "1"}
    assert parse_items_booked({"Items": "4"}) == 4
    assert parse_items_booked({"Items": [{}, {}]}) == 2
    assert parse_items_booked({}) is None


def test_lookup_prefers_id_then_exact_name_then_unique_prefix() -> None:
    items = [
        Product(1, "Beer", Decimal(4)),
        Product(2, "Beer large", Decimal(6)),
        Product(12, "1up", Decimal(1)),
    ]

    def find(query: int | str) -> Product:
        return find_by_id_or_name(items, query, unknown=UnknownProduct, ambiguous=AmbiguousName)

    assert find("beer").id == 1  # exact beats prefix
    assert find("beer l").id == 2
    assert find("12").id == 12 and find(1).id == 1
    assert find("1u").id == 12
    with pytest.raises(AmbiguousName) as caught:
        find("be")
    assert caught.value.candidates == ["Beer (#1)", "Beer large (#2)"]
    for query in ("", "   ", "wine", 99):
        with pytest.raises(UnknownProduct):
            find(query)
    long_query = "x" * 500
    with pytest.raises(UnknownProduct) as unknown:
        find(long_query)
    assert len(unknown.value.message) < 120


def test_error_models_map_to_typed_errors() -> None:
    limited = error_from_reply(
        "ratelimit", {"command": "listproducts", "retry_after": 2500}, command=None
    )
    assert isinstance(limited, RateLimited)
    assert limited.retry_after == 2.5 and limited.command == "listproducts"
    assert limited.message == "ConcertPOS is rate limiting listproducts; try again in 3 s."
    odd = error_from_reply("ratelimit", "soon", command="version")
    assert isinstance(odd, RateLimited) and odd.retry_after == 0 and odd.command == "version"
    assert isinstance(error_from_reply("no_api_key", 0, command=None), ConcertPOSAuthError)
    assert isinstance(error_from_reply("invalid_json5", 0, command=None), ConcertPOSRequestError)
    assert isinstance(
        error_from_reply("missing_parameter_POSID", 0, command=None), ConcertPOSRequestError
    )
    assert isinstance(error_from_reply("getlicense", 0, command=None), ConcertPOSLicenseError)
    strange = error_from_reply("<script>alert(1)</script>", 0, command="version")
    assert isinstance(strange, ConcertPOSRefused) and strange.code == "unknown"
    assert "<script>" not in strange.message
    assert strange.service == "concertpos"


def test_one_unbelievable_transaction_row_does_not_hide_the_others() -> None:
    good = {
        "ID": 9,
        "Payment_ID": 1,
        "PointOfSaleID": 1,
        "Product_ID": 1,
        "AmountProduct": 1,
        "AmountMoney": 18,
        "timestamp": "2020-05-13T15:27:02.000Z",
        "hash": "ab",
    }
    bad = {**good, "ID": 10, "AmountMoney": 1e308}
    listing = TransactionList.parse({"Count": "many", "Transactions": [bad, good]})
    assert [t.id for t in listing.transactions] == [9]
    assert (listing.count, listing.unreadable) == (2, 1)
    text = transactions_text(1, listing, {}, {})
    assert text.endswith("(1 row(s) ConcertPOS sent could not be read)")
