"""Reading the API's reply bodies: JSON, the relaxed literal, and what is refused."""

from __future__ import annotations

import pytest

from bot_plugins.rooms.replies import ReplyFormatError, format_relaxed, parse_reply


@pytest.mark.parametrize(
    ("body", "success", "message", "nickname"),
    [
        ('{ success: true, message: "", nickname: "bob_1234" }', True, "", "bob_1234"),
        ('{"success": false, "message": "No such performer."}', False, "No such performer.", None),
        ("{success:false,message:'It\\'s closed',}", False, "It's closed", None),
        ("{ success: false, message: Invalid key }", False, "Invalid key", None),
        ("{ success: false, message: 5 credits left }", False, "5 credits left", None),
        ("\ufeff { success: true };\n", True, "", None),
        ('{ success: "true", message: null }', True, "", None),
        ("{ success: 0 /* why */, // not ok\n message: 'x' }", False, "x", None),
        ('{ "success": 1, nickname: "a\\u00e9_0001" }', True, "", "aé_0001"),
    ],
)
def test_accepted_bodies(body, success, message, nickname):
    reply = parse_reply(body)

    assert (reply.success, reply.message, reply.fields.get("nickname")) == (
        success,
        message,
        nickname,
    )


@pytest.mark.parametrize(
    "body",
    [
        "",
        "<?xml version='1.0'?><response/>",
        "[true]",
        '{ message: "no success" }',
        "{ success: maybe }",
        '{ success: true, message: "unterminated }',
        '{ success: true, message: "a" junk }',
        "{ success: true } trailing",
        "{ success: " + "[" * 50 + "]" * 50 + " }",
    ],
)
def test_refused_bodies(body):
    with pytest.raises(ReplyFormatError):
        parse_reply(body)


def test_relaxed_output_round_trips():
    fields = {"success": True, "message": 'say "hi"', "nickname": "zoë_0007"}

    text = format_relaxed(fields)

    assert text == '{ success: true, message: "say \\"hi\\"", nickname: "zoë_0007" }'
    assert parse_reply(text).fields == fields
