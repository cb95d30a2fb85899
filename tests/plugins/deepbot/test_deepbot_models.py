"""Reading DeepBot's values: every number and timestamp shape the installs send."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from bot_plugins.deepbot.models import VipLevel, parse_number, parse_timestamp, parse_user
from bot_plugins.deepbot.protocol import (
    BadFrame,
    Reply,
    check_points,
    format_decimal,
    parse_reply,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("720.00", Decimal("720")),
        (720.0, Decimal("720")),
        (720, Decimal("720")),
        ("13,37", Decimal("13.37")),
        (" 5 ", Decimal(5)),
        ("-2.5", Decimal("-2.5")),
        ("1,234.50", Decimal("1234.5")),
        ("1.234,50", Decimal("1234.5")),
        ("1,234,567", Decimal(1234567)),
        ("1.234.567", Decimal(1234567)),
        (0.1, Decimal("0.1")),
    ],
)
def test_numbers_in_every_shape(value: object, expected: Decimal) -> None:
    assert parse_number(value) == expected


@pytest.mark.parametrize(
    "value", ["", "abc", "NaN", "inf", float("nan"), float("inf"), True, None, "1,2,3.4.5", [1]]
)
def test_non_numbers(value: object) -> None:
    assert parse_number(value) is None


def test_timestamps() -> None:
    assert parse_timestamp("2014-07-05T18:09:10.3156084Z") == datetime(
        2014, 7, 5, 18, 9, 10, 315608, tzinfo=UTC
    )
    plus8 = parse_timestamp("2014-12-09T00:00:00+08:00")
    assert plus8 is not None and plus8.utcoffset() == timedelta(hours=8)
    assert parse_timestamp("2014-12-09T00:00:00.1234567+08:00") == datetime(
        2014, 12, 9, 0, 0, 0, 123456, tzinfo=timezone(timedelta(hours=8))
    )
    assert parse_timestamp("2020-01-01T10:00:00") == datetime(2020, 1, 1, 10, tzinfo=UTC)
    assert parse_timestamp("0001-01-01T00:00:00") is None
    for junk in ("", "soon", None, 12):
        assert parse_timestamp(junk) is None


def test_user_records_are_read_tolerantly() -> None:
    user = parse_user(
        '{"points": "13,37", "watch_time": "120", "vip": "3", "join_date": "bad"}',
        requested="Dana",
    )
    assert user is not None
    assert (user.name, user.points, user.hours, user.vip_level) == (
        "Dana",
        Decimal("13.37"),
        Decimal(2),
        VipLevel.GOLD,
    )
    assert user.join_date is None and user.mod == 0
    odd = parse_user({"points": 1, "watch_time": 0, "vip": 7, "mod": 9}, requested="x")
    assert odd is not None and odd.vip_level is None and odd.mod_level is None
    assert not odd.is_vip
    assert parse_user({"watch_time": 0}, requested="x") is None
    assert parse_user({"points": 1, "watch_time": 0, "vip": 1.5}, requested="x") is None
    assert parse_user("User not found", requested="x") is None
    assert parse_user("{broken", requested="x") is None


def test_replies_and_pushes() -> None:
    assert parse_reply('{"function": "get_points", "param": "Bob", "msg": "1.00"}') == Reply(
        "get_points", "Bob", "1.00"
    )
    assert parse_reply('{"function": "get_points", "param": "Bob", "msg": 1}').key == (
        "get_points",
        "bob",
    )
    assert parse_reply('{"function": "register", "msg": "success"}') == Reply(
        "register", "", "success"
    )
    for frame in ("music|x", "[]", b"{}", "newsub|{x}"):
        assert parse_reply(frame) is None
    for frame in ("{nope", '{"msg": "x"}', '{"function": 3}', "[" * 5 + "{" + "]" * 5):
        if frame.startswith("{"):
            with pytest.raises(BadFrame):
                parse_reply(frame)


def test_deep_nesting_is_refused_before_parsing_and_never_recurses() -> None:
    deep = '{"function": "get_points", "param": "bob", "msg": ' + "[" * 100_000 + "]" * 100_000
    with pytest.raises(BadFrame, match="nested deeper"):
        parse_reply(deep + "}")
    # Brackets inside strings are text, not nesting.
    text = '{"function": "get_rank", "param": "bob", "msg": "' + "[" * 50 + '"}'
    assert parse_reply(text) == Reply("get_rank", "bob", "[" * 50)


def test_msg_as_a_json_encoded_string_is_decoded() -> None:
    user = {"user": "bob", "points": 1.0}
    frame = json.dumps({"function": "get_user", "param": "bob", "msg": json.dumps(user)})
    assert parse_reply(frame) == Reply("get_user", "bob", user)
    frame = json.dumps({"function": "get_users", "param": "0", "msg": json.dumps([user])})
    assert parse_reply(frame) == Reply("get_users", "0", [user])
    assert parse_reply(frame).key == ("get_users", "")  # list replies match on the function
    # Text that only looks like JSON stays text.
    frame = json.dumps({"function": "get_rank", "param": "bob", "msg": "{Sergeant"})
    assert parse_reply(frame).msg == "{Sergeant"


def test_names_from_deepbot_are_validated() -> None:
    record = {"user": "x" * 100_000, "points": 1, "watch_time": 2}
    assert parse_user(record, requested="bob").name == "bob"
    assert parse_user({**record, "user": "evil\nname"}, requested="bob").name == "bob"
    assert parse_user(record, requested=None) is None
    assert parse_user({**record, "user": "Bob"}, requested="bob").name == "Bob"
    assert parse_user({**record, "points": -5}, requested="bob") is None


def test_amounts_are_formatted_plainly() -> None:
    assert format_decimal(Decimal("1E+3")) == "1000"
    assert format_decimal(Decimal("12.500")) == "12.5"
    assert format_decimal(Decimal("0.00")) == "0"
    assert check_points("0", allow_zero=True) == "0"
    assert check_points(Decimal("0.05")) == "0.05"
