"""A structured command's arguments survive the broker as what the handler would get."""

from __future__ import annotations

import enum
import json
from decimal import Decimal
from typing import Literal

import pytest

from bot import Context, Rest, UsageError, UserRef, command
from bot.cluster.envelope import decode_args, decode_message, encode_message
from bot.messages import CollectingResponder, Message


class Mood(enum.Enum):
    HAPPY = "happy"
    GRUMPY = "grumpy"


@command("sample")
async def sample(
    ctx: Context,
    who: UserRef,
    n: int,
    price: Decimal,
    ratio: float,
    mood: Mood,
    size: Literal["s", "m"],
    sure: bool,
    note: Rest,
    *,
    loud: bool = False,
) -> str:
    return "unused"


def message() -> Message:
    return Message("discord", "5", "7", "bob", "/sample", CollectingResponder(), id="discord:1")


def test_every_kind_of_argument_comes_back_as_it_was_sent() -> None:
    sent = {
        "who": UserRef("discord", "1100", "alice"),
        "n": 12_345_678_901,
        "price": Decimal("1.50"),
        "ratio": 0.1,
        "mood": Mood.GRUMPY,
        "size": "m",
        "sure": False,
        "note": "it's  'quoted' --loud",
        "loud": True,
    }
    body = encode_message(message(), "inbox", (sample, sent))
    incoming = decode_message(body, CollectingResponder())
    assert incoming.reply_to == "inbox" and incoming.slash is not None
    name, args = incoming.slash
    assert name == "sample"
    assert decode_args(sample, args, "discord") == sent


def test_an_argument_the_command_does_not_take_or_cannot_read_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        decode_args(sample, {"nosuch": {"text": "1"}}, "discord")
    with pytest.raises(UsageError):
        decode_args(sample, {"n": {"text": "many"}}, "discord")


def test_a_malformed_structured_part_is_a_malformed_envelope() -> None:
    body = json.loads(encode_message(message(), "inbox"))
    body["slash"] = {"command": "sample", "args": ["not", "a", "mapping"]}
    with pytest.raises(ValueError, match="malformed"):
        decode_message(json.dumps(body).encode(), CollectingResponder())
