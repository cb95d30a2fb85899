"""The rooms plugin end to end: chat commands through the real bot, the simulator over HTTP.

Intervals are short (a ping every 0.1 s, a purge after 0.6 s) so keep-alive, loss and
restarts show within a second instead of the API's 10 seconds.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.commands import UserRef
from bot_plugins import rooms as rooms_plugin
from bot_plugins.rooms.client import RoomsClient
from bot_plugins.rooms.models import LeaveRequest, UpdateCreditsRequest
from bot_plugins.rooms.service import RoomsService
from bot_plugins.rooms.simulator import RoomsSimulator

ROOMS_KEY = "e2e-key-7Hd!x"
PING = 0.1
PURGE = 0.6
ADMINS = {"console": ["boss"]}


@pytest.fixture
async def sim() -> AsyncIterator[RoomsSimulator]:
    async with RoomsSimulator(key=ROOMS_KEY, purge_after=PURGE, seed=11) as simulator:
        yield simulator


def rooms_config(simulator: RoomsSimulator | None = None, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "url": simulator.url if simulator else "http://127.0.0.1:9",
        "key": ROOMS_KEY,
        "ping_interval": PING,
        "timeout": 1.0,
        "max_ping_failures": 2,
        "ip_address": "198.51.100.7",
    }
    return config | overrides


def presence_rows(directory: Path) -> list[tuple[Any, ...]]:
    """The stored presences, read from the database file after the bot stopped."""
    with sqlite3.connect(directory / "bot.db") as conn:
        return conn.execute(
            "select performer_id, owner, chat_id, display_nickname from rooms_presence"
        ).fetchall()


async def link_approved(bot: Any, user: str, customer_id: int) -> None:
    """``link rooms`` as ``user``, then the claim approved as an admin would."""
    [reply] = await bot.chat().say(f"!link rooms {customer_id}", user=user)
    assert reply.startswith(f"You claimed rooms customer {customer_id}."), reply
    bot.approve_link(user, "rooms")


def service_of(bot: Any) -> RoomsService:
    service = bot.state("rooms")
    assert isinstance(service, RoomsService)
    return service


# -- join, keep-alive, rooms, leave -----------------------------------------------------------


async def test_join_replies_with_the_display_nickname_and_keeps_the_member(bot_harness, sim):
    async with bot_harness(plugins={"rooms": rooms_config(sim)}) as bot:
        chat = bot.chat()

        [reply] = await chat.say("!room join 21", user="u1", name="Alice")

        [member] = sim.members(21)
        assert reply.startswith(f"You are in performer 21's room as {member.display_nickname}.")
        assert re.fullmatch(r"Alice_\d{4}", member.display_nickname)
        assert "guest" in reply and "!link rooms <customer id>" in reply
        [call] = sim.calls_of("joinRoom")
        assert call.fields == {
            "function": "joinRoom",
            "performerId": "21",
            "nickname": "Alice",
            "ipAddress": "198.51.100.7",  # from config: a chat has no client address
            "registered": "0",
            "credits": "0",
        }

        # With pings every 0.1 s the member outlives several purge windows.
        await asyncio.sleep(PURGE * 2.5)
        [member] = sim.members(21)
        assert member.pings >= 5
        pings = sim.calls_of("pingRoom")
        assert {c.fields["nickname"] for c in pings} == {member.display_nickname}
        assert all(c.success for c in pings)

        [listing] = await chat.say("!rooms", user="u1")
        assert listing.startswith("You are present in:\nperformer 21 as Alice_")
        assert re.search(r"since \d\d:\d\d UTC \(\d s ago\)", listing)
        assert await chat.say("!rooms", user="u2") == [
            "You are not in any room. Join one with !room join <performer id>."
        ]
        [status] = await chat.say("!status")
        assert "plugin rooms: up - 1 chat user presence(s) kept alive" in status

        assert await chat.say("!room leave", user="u1") == ["You left performer 21's room."]
        assert sim.members(21) == []
        pings_after = len(sim.calls_of("pingRoom"))
        await asyncio.sleep(PING * 3)
        assert len(sim.calls_of("pingRoom")) == pings_after  # the pings stopped
        assert await chat.say("!room leave", user="u1") == ["You are not in any room."]


async def test_registered_customer_joins_with_link_and_balance(bot_harness, sim, rooms_wait):
    sim.register_customer(601, 0)
    async with bot_harness(plugins={"rooms": rooms_config(sim)}, admins=ADMINS) as bot:
        chat = bot.chat()
        assert await chat.say("!link rooms 601", user="u1") == [
            "You claimed rooms customer 601. An admin has to approve it (claim #1) before "
            "commands that act on the account work; you will be told here. Check with !links. "
            "Until then you join rooms as a guest."
        ]
        # A claim proves nothing: the join is a guest's, and no credits go to customer 601.
        assert await chat.say("!credits 40 u1", user="boss") == [
            "u1's credits are now 40. u1 is not a registered customer (no approved customer "
            "id), so the rooms service gets the balance at the next room join."
        ]
        assert sim.calls_of("updateCredits") == []
        [guest] = await chat.say("!room join 20", user="u1", name="Bea")
        assert guest.endswith(
            "You joined as a guest: your link to customer 601 is waiting for an admin's approval."
        )
        assert "customerId" not in sim.calls_of("joinRoom")[0].fields
        assert sim.calls_of("joinRoom")[0].fields["registered"] == "0"
        assert await chat.say("!credits", user="u1") == [
            "You have 40 credits (as a guest until an admin approves your link to customer 601)."
        ]
        await chat.say("!room leave", user="u1")

        assert await chat.say("!links approve 1", user="boss") == [
            "Approved claim #1: console:u1 is linked to rooms 601. They were told."
        ]
        bot.clock.advance(60)
        [reply] = await chat.say("!room join 21", user="u1", name="Bea")

        assert "guest" not in reply
        call = sim.calls_of("joinRoom")[-1]
        assert list(call.fields.items()) == [
            ("function", "joinRoom"),
            ("performerId", "21"),
            ("nickname", "Bea"),
            ("customerId", "601"),
            ("ipAddress", "198.51.100.7"),
            ("registered", "1"),
            ("credits", "40"),
        ]
        [member] = sim.members(21)
        assert (member.customer_id, member.registered, member.credits) == (601, True, 40)
        await rooms_wait(lambda: sim.calls_of("pingRoom") != [])
        assert sim.calls_of("pingRoom")[0].fields["customerId"] == "601"


async def test_join_refusals_and_bad_input_change_nothing(bot_harness, sim):
    config = rooms_config(sim, max_rooms_per_user=2)
    async with bot_harness(plugins={"rooms": config}) as bot:
        chat = bot.chat()
        [usage] = await chat.say("!room join abc")
        assert usage.startswith("<performer_id> must be a whole number, not 'abc'")
        assert await chat.say("!room join 0") == [
            "The performer id must be between 1 and 2147483647."
        ]
        assert sim.calls == []

        await chat.say("!room join 21")
        assert await chat.say("!room join 21") == ["You are already in performer 21's room."]
        bot.clock.advance(60)  # past the join cooldown
        await chat.say("!room join 22")
        [limit] = await chat.say("!room join 23")
        assert limit.startswith("You are already in 2 rooms, the most one user may be in at once")
        assert len(sim.calls_of("joinRoom")) == 2
        assert sorted(sim.rooms()) == [21, 22]

        [ambiguous] = await chat.say("!room leave")
        assert ambiguous == (
            "You are in 2 rooms (performers 21, 22); say which one, e.g. !room leave 21."
        )
        assert await chat.say("!room leave 23") == ["You are not in performer 23's room."]
        assert sorted(sim.rooms()) == [21, 22]


async def test_join_cooldown(bot_harness, sim):
    async with bot_harness(plugins={"rooms": rooms_config(sim)}) as bot:
        chat = bot.chat()
        for performer in (1, 2, 3):
            await chat.say(f"!room join {performer}", user="u1")
        [slow] = await chat.say("!room join 4", user="u1")
        assert slow.startswith("Slow down")
        assert len(sim.calls_of("joinRoom")) == 3


async def test_display_names_are_cleaned_into_nicknames(bot_harness, sim):
    async with bot_harness(plugins={"rooms": rooms_config(sim)}) as bot:
        chat = bot.chat()
        await chat.say("!room join 5", user="u1", name="Zed\x00\n  the\tgreat" + "x" * 80)
        [sent] = [c.fields["nickname"] for c in sim.calls_of("joinRoom")]
        assert sent.startswith("Zed the greatxxx") and len(sent) == 64

        assert await chat.say("!room join 5", user="u2", name="\x00\x01 ") == [
            "Your chat display name has nothing the rooms service can show; set a display "
            "name and try again."
        ]
        assert len(sim.calls_of("joinRoom")) == 1


async def test_leave_that_the_api_cannot_confirm(bot_harness, sim):
    async with bot_harness(plugins={"rooms": rooms_config(sim)}) as bot:
        chat = bot.chat()
        await chat.say("!room join 21", user="u1")
        sim.fail(
            "body",
            body='{ success: false, message: "Customer is not in this room." }',
            functions={"leaveRoom"},
        )
        # The API already dropped the customer: that is what leaving wanted.
        assert await chat.say("!room leave 21", user="u1") == ["You left performer 21's room."]

        await chat.say("!room join 22", user="u1")
        sim.fail("http_error", status=503, times=None, functions={"leaveRoom"})
        [reply] = await chat.say("!room leave", user="u1")
        assert reply == (
            "You left performer 22's room on the bot's side, but the rooms service did not "
            "confirm it: The rooms service failed with HTTP status 503; please try again later. "
            "Without keep-alive pings it drops you shortly."
        )
        assert len(sim.calls_of("leaveRoom")) == 1 + 3  # the leave was retried
        assert await chat.say("!rooms", user="u1") == [
            "You are not in any room. Join one with !room join <performer id>."
        ]
        sim.clear_faults()
        await asyncio.sleep(PURGE * 1.5)
        assert sim.members(22) == []  # no more pings: the API purged the customer


# -- presence lost --------------------------------------------------------------------------


async def test_pings_stopped_the_member_is_purged_and_told_in_their_chat(
    bot_harness, sim, rooms_wait
):
    async with bot_harness(plugins={"rooms": rooms_config(sim)}) as bot:
        joined_in = bot.chat("fans")
        await joined_in.say("!room join 21", user="u1", name="Cleo")
        await bot.chat("other").say("!room join 30", user="u2", name="Dan")
        assert len(sim.rooms()) == 2
        sim.fail("drop", times=None, functions={"pingRoom"})  # no ping reaches the API

        alert = await bot.wait_for_alert(lambda a: "Cleo" in a.text)

        assert (alert.platform, alert.chat_id) == ("console", "fans")
        assert alert.text.startswith("Cleo: your presence in performer 21's room was lost: ")
        assert alert.text.endswith("Use !room join 21 to enter again.")
        dan = await bot.wait_for_alert(lambda a: "Dan" in a.text)
        assert dan.chat_id == "other"  # each user is told where they joined, nowhere else
        await rooms_wait(lambda: sim.rooms() == {})  # unpinged, both are purged
        [status] = await joined_in.say("!status")
        [line] = [x for x in status.splitlines() if x.startswith("plugin rooms:")]
        assert re.match(
            r"plugin rooms: (degraded|down) - The (connection to the )?rooms service", line
        )
        assert await joined_in.say("!rooms", user="u1") == [
            "You are not in any room. Join one with !room join <performer id>."
        ]
        assert bot.bot.store.conn.execute("select count(*) from rooms_presence").fetchone() == (0,)

        sim.clear_faults()
        [again] = await joined_in.say("!room join 21", user="u1", name="Cleo")
        assert again.startswith("You are in performer 21's room as Cleo_")
        [status] = await joined_in.say("!status")
        assert "plugin rooms: up" in status


async def test_removed_by_the_api_is_told_with_its_reason(bot_harness, sim, rooms_wait):
    async with bot_harness(plugins={"rooms": rooms_config(sim)}) as bot:
        chat = bot.chat("c1")
        await chat.say("!room join 21", user="u1", name="Eve")
        await chat.say("!room join 21", user="u2", name="Fay")
        eve = next(m for m in sim.members(21) if m.nickname == "Eve")
        async with RoomsClient(sim.url, ROOMS_KEY) as other:  # behind the bot's back
            await other.leave_room(LeaveRequest(21, eve.display_nickname))

        alert = await bot.wait_for_alert(lambda a: "Eve" in a.text)

        assert "Customer is not in this room." in alert.text
        assert "Fay" not in alert.text
        await asyncio.sleep(PING * 3)
        assert [m.nickname for m in sim.members(21)] == ["Fay"]
        assert await chat.say("!rooms", user="u1") == [
            "You are not in any room. Join one with !room join <performer id>."
        ]


# -- credits and links ----------------------------------------------------------------------


async def test_credits_for_registered_customers_reach_the_api(bot_harness, sim):
    async with bot_harness(plugins={"rooms": rooms_config(sim)}, admins=ADMINS) as bot:
        chat = bot.chat()
        await link_approved(bot, "u1", 601)
        await chat.say("!room join 21", user="u1", name="Gus")  # joins as registered
        assert await chat.say("!credits", user="u1") == ["You have 0 credits (customer 601)."]

        replies = await chat.send("!credits 75 u1", user="boss")

        assert [(r.text, r.private) for r in replies] == [
            ("u1's credits are now 75; the rooms service has them too.", True)
        ]
        assert sim.credits(601) == 75
        assert sim.members(21)[0].credits == 75
        [call] = sim.calls_of("updateCredits")
        assert call.fields == {"function": "updateCredits", "customerId": "601", "credits": "75"}
        assert await chat.say("!credits", user="u1") == ["You have 75 credits (customer 601)."]
        bot.clock.advance(60)
        await chat.say("!room leave", user="u1")
        await chat.say("!room join 22", user="u1", name="Gus")
        assert sim.calls_of("joinRoom")[-1].fields["credits"] == "75"


async def test_a_non_admin_cannot_set_credits_and_nothing_is_sent(bot_harness, sim):
    """The report: a member linked to customer 4242 typed ``!credits 2000000000``."""
    sim.register_customer(4242, 10)
    async with bot_harness(plugins={"rooms": rooms_config(sim)}, admins=ADMINS) as bot:
        chat = bot.chat()
        await link_approved(bot, "u1", 4242)  # even an approved customer cannot
        refused = (
            "Only admins can set credits; credits are bought through the rooms service. "
            "See yours with !credits."
        )
        for text in ("!credits 2000000000", "!credits 5", "!credits 0 u1", "!credits 7 4242"):
            assert await chat.say(text, user="u1") == [refused], text
            bot.clock.advance(60)
        assert await chat.say("!credits 1000 bob", user="mallory") == [refused]
        assert sim.calls == []  # the simulator received nothing at all
        assert sim.credits(4242) == 10
        assert await chat.say("!credits", user="u1") == ["You have 0 credits (customer 4242)."]
        assert bot.bot.store.audit_rows() == []  # nothing was done, so nothing to audit


async def test_credits_for_unregistered_users(bot_harness, sim):
    async with bot_harness(plugins={"rooms": rooms_config(sim)}, admins=ADMINS) as bot:
        chat = bot.chat()
        assert await chat.say("!credits", user="u1") == [
            "You have 0 credits (as a guest; link your customer id with !link rooms "
            "<customer id> to be registered)."
        ]
        assert await chat.say("!credits 5", user="boss") == [
            "Your credits are now 5. You are not a registered customer (no approved customer "
            "id), so the rooms service gets the balance at the next room join."
        ]
        assert sim.calls_of("updateCredits") == []

        # Linked and approved, but the API has never seen the customer as registered: its
        # refusal shows, and the balance stays as it was.
        await link_approved(bot, "u1", 777)
        assert await chat.say("!credits 5 u1", user="boss") == [
            "The rooms service refused to update the credits: Credits can only be updated for "
            "registered customers."
        ]
        assert sim.credits(777) is None
        assert await chat.say("!credits", user="u1") == ["You have 0 credits (customer 777)."]


async def test_bad_credit_amounts_are_refused_before_sending(bot_harness, sim):
    sim.register_customer(601, 10)
    async with bot_harness(plugins={"rooms": rooms_config(sim)}, admins=ADMINS) as bot:
        chat = bot.chat()
        await link_approved(bot, "u1", 601)
        assert await chat.say("!credits -3 u1", user="boss") == [
            "Credits must be between 0 and 2147483647."
        ]
        assert await chat.say("!credits 3000000000 u1", user="boss") == [
            "Credits must be between 0 and 2147483647."
        ]
        bot.clock.advance(60)
        [usage] = await chat.say("!credits 2.5 u1", user="boss")
        assert usage.startswith("<n> must be a whole number, not '2.5'")
        assert sim.calls_of("updateCredits") == []
        assert sim.credits(601) == 10


async def test_credits_not_answered_are_not_stored(bot_harness, sim):
    sim.register_customer(601, 10)
    async with bot_harness(plugins={"rooms": rooms_config(sim)}, admins=ADMINS) as bot:
        chat = bot.chat()
        await link_approved(bot, "u1", 601)
        sim.fail("drop", functions={"updateCredits"})

        [reply] = await chat.say("!credits 50 u1", user="boss")

        assert reply == "The connection to the rooms service broke; please try again."
        assert len(sim.calls_of("updateCredits")) == 1  # never sent twice
        assert await chat.say("!credits", user="u1") == ["You have 0 credits (customer 601)."]


async def test_admins_set_credits_for_others_and_are_audited(bot_harness, sim):
    sim.register_customer(602, 0)
    async with bot_harness(plugins={"rooms": rooms_config(sim)}, admins=ADMINS) as bot:
        chat = bot.chat()
        await link_approved(bot, "bob", 602)

        assert await chat.say("!credits 30 bob", user="boss") == [
            "bob's credits are now 30; the rooms service has them too."
        ]
        assert sim.credits(602) == 30
        assert await chat.say("!credits 31 602", user="boss") == [
            "customer 602's credits are now 31; the rooms service has them too."
        ]
        mention = {"<@42>": UserRef("console", "carol", "@Carol")}
        assert await chat.say("!credits 12 <@42>", user="boss", mentions=mention) == [
            "@Carol's credits are now 12. @Carol is not a registered customer (no approved "
            "customer id), so the rooms service gets the balance at the next room join."
        ]
        assert await chat.say("!credits", user="bob") == ["You have 31 credits (customer 602)."]
        assert await chat.say("!credits", user="carol") == [
            "You have 12 credits (as a guest; link your customer id with !link rooms "
            "<customer id> to be registered)."
        ]
        [unknown] = await chat.say("!credits 5 999", user="boss")
        assert unknown == "No chat user has linked rooms customer id 999."
        assert sim.credits(602) == 31
        await chat.say("!room join 9", user="carol", name="Carol")
        assert sim.calls_of("joinRoom")[-1].fields["credits"] == "12"

        audit = [
            (r["user_id"], r["command"], r["outcome"], r["arguments"])
            for r in reversed(bot.bot.store.audit_rows())
            if r["command"] == "credits"
        ]
        assert audit == [
            ("boss", "credits", "ok", '{"n": 30, "user": "bob"}'),
            ("boss", "credits", "ok", '{"n": 31, "user": "customer 602"}'),
            ("boss", "credits", "ok", '{"n": 12, "user": "@Carol"}'),
        ]


async def test_link_rooms(bot_harness, sim):
    async with bot_harness(plugins={"rooms": rooms_config(sim)}, admins=ADMINS) as bot:
        chat = bot.chat()
        replies = await chat.send("!link rooms 601", user="u1")
        assert replies[0].private and replies[0].text.startswith("You claimed rooms customer 601")
        # Asking again while the claim waits repeats its number, and alerts nobody again.
        [again] = await chat.say("!link rooms 601", user="u1")
        assert "(claim #1)" in again
        assert bot.bot.store.pending_claim_count() == 1
        bot.approve_link("u1", "rooms")
        assert await chat.say("!link rooms 601", user="u1") == [
            "You are already linked to rooms customer 601."
        ]
        assert await chat.say("!link rooms 601", user="u2") == [
            "Customer id 601 is already linked to another chat user; ask an admin if it is yours."
        ]
        assert await chat.say("!link rooms 0", user="u2") == [
            "The customer id must be between 1 and 2147483647."
        ]
        [usage] = await chat.say("!link rooms me", user="u2")
        assert usage.startswith("<customer_id> must be a whole number, not 'me'")
        assert await chat.say("!links", user="u1") == ["rooms: 601 (approved by an admin)"]
        assert await chat.say("!links", user="u2") == ["You have no linked accounts."]

        await chat.say("!room join 3", user="u1")
        assert await chat.say("!link rooms 602", user="u1") == [
            "Leave your rooms first (!room leave): you joined them under your current link."
        ]
        await chat.say("!room leave", user="u1")
        assert (await chat.say("!link rooms 602", user="u1"))[0].startswith(
            "You claimed rooms customer 602"
        )
        assert await chat.say("!links", user="u1") == [
            "rooms: 602 (claimed, waiting for an admin: claim #2)"
        ]
        # An admin's own link is approved at once.
        assert await chat.say("!link rooms 700", user="boss") == [
            "Linked: you are rooms customer 700. Your next room join is as a registered "
            "customer with your credits. As you are an admin, it is approved at once."
        ]


async def test_link_approval_none_trusts_the_typed_customer_id(bot_harness, sim):
    sim.register_customer(601, 0)
    config = rooms_config(sim, link_approval="none")
    async with bot_harness(plugins={"rooms": config}) as bot:
        chat = bot.chat()
        assert await chat.say("!link rooms 601", user="u1") == [
            "Linked: you are rooms customer 601. Your next room join is as a registered "
            "customer with your credits."
        ]
        await chat.say("!room join 21", user="u1", name="Bea")
        assert sim.calls_of("joinRoom")[0].fields["customerId"] == "601"


async def test_api_text_in_replies_is_clipped(bot_harness, sim):
    async with bot_harness(plugins={"rooms": rooms_config(sim)}) as bot:
        chat = bot.chat()
        long_reason = "Room closed \u001b[2J" + "z" * 50_000  # under the 64 KB body cap
        sim.fail("body", body=f'{{ success: false, message: "{long_reason}" }}', times=1)

        [reply] = await chat.say("!room join 21", user="u1")

        assert reply.startswith("The rooms service refused to join the room: Room closed")
        assert reply.endswith("…") and len(reply) < 300
        assert "\x1b" not in reply
        assert sim.members(21) == []


@pytest.mark.parametrize(
    "body",
    [
        "",
        "<html><body>502 Bad Gateway</body></html>",
        "{ success: true, nickname: " + "[" * 5000 + " }",
        "\xff\xfe garbage",
        "{ success: 2 }",
        "x" * 70_000,
    ],
)
async def test_malformed_responses_get_a_clear_reply_and_the_bot_goes_on(bot_harness, sim, body):
    async with bot_harness(plugins={"rooms": rooms_config(sim)}) as bot:
        chat = bot.chat()
        sim.fail("body", body=body, times=1, functions={"joinRoom"})

        assert await chat.say("!room join 21", user="u1") == [
            "The rooms service sent an answer the bot could not understand."
        ]
        assert sim.members(21) == []
        bot.clock.advance(60)
        [joined] = await chat.say("!room join 21", user="u1")
        assert joined.startswith("You are in performer 21's room")


# -- the key, garbled answers, an unreachable service ----------------------------------------


async def test_wrong_key_is_reported_and_never_shown(bot_harness, sim, caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # other tests quiet httpx's own level
    wrong = "wrong-key-8Jq"
    async with bot_harness(plugins={"rooms": rooms_config(sim, key=wrong)}) as bot:
        chat = bot.chat()
        [status] = await chat.say("!status")
        assert "plugin rooms: up" in status  # no call yet, nothing known to be wrong

        replies = await chat.say("!room join 21", user="u1")

        assert replies == ["The rooms service refused to join the room: Invalid API key."]
        assert sim.rooms() == {}
        assert sim.calls[0].key_ok is False
        [status] = await chat.say("!status")
        assert (
            "plugin rooms: down - The rooms service rejected the bot's API key; an admin must "
            "check the config." in status
        )
        assert await chat.say("!rooms", user="u1") == [
            "You are not in any room. Join one with !room join <performer id>."
        ]
        said = [r.text for r in chat.replies]
    assert not any(wrong in text for text in said)
    assert wrong not in caplog.text
    assert "key=***" in caplog.text


async def test_malformed_body_is_reported_and_nothing_is_kept(bot_harness, sim):
    async with bot_harness(plugins={"rooms": rooms_config(sim)}) as bot:
        chat = bot.chat()
        sim.fail("malformed", functions={"joinRoom"})

        assert await chat.say("!room join 21", user="u1") == [
            "The rooms service sent an answer the bot could not understand."
        ]
        assert len(sim.calls_of("joinRoom")) == 1  # a join is never repeated blindly
        assert await chat.say("!rooms", user="u1") == [
            "You are not in any room. Join one with !room join <performer id>."
        ]
        [status] = await chat.say("!status")
        assert "plugin rooms: degraded - The rooms service sent an answer" in status

        bot.clock.advance(60)
        [joined] = await chat.say("!room join 21", user="u1")
        assert joined.startswith("You are in performer 21's room")
        [status] = await chat.say("!status")
        assert "plugin rooms: up" in status


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_unreachable_service_does_not_stop_the_bot(bot_harness):
    url = f"http://127.0.0.1:{_closed_port()}"
    async with bot_harness(plugins={"rooms": {**rooms_config(), "url": url}}) as bot:
        assert bot.failures == {}
        chat = bot.chat()

        assert await chat.say("!room join 21", user="u1") == [
            "The rooms service cannot be reached right now."
        ]
        [status] = await chat.say("!status")
        assert "plugin rooms: down - The rooms service cannot be reached right now." in status
        assert await chat.say("!ping") == ["pong"]


# -- restart and shutdown -------------------------------------------------------------------


async def _join_and_crash(bot_harness, simulator, directory: Path, chat_id: str) -> str:
    """Run a bot that joins, then stops without being able to leave (as after a crash)."""
    async with bot_harness(plugins={"rooms": rooms_config(simulator)}, directory=directory) as bot:
        [reply] = await bot.chat(chat_id).say("!room join 21", user="u1", name="Hal")
        simulator.fail("http_error", status=503, times=None, functions={"leaveRoom"})
    simulator.clear_faults()
    [row] = presence_rows(directory)
    assert row[:3] == (21, "console:u1", chat_id)  # kept: the customer may still be inside
    return reply


async def test_restart_resumes_a_presence_the_api_still_has(bot_harness, tmp_path, rooms_wait):
    async with RoomsSimulator(key=ROOMS_KEY, purge_after=5.0, seed=3) as simulator:
        directory = tmp_path / "bot"
        directory.mkdir()
        await _join_and_crash(bot_harness, simulator, directory, "c1")
        [member] = simulator.members(21)
        pings_before = member.pings

        async with bot_harness(
            plugins={"rooms": rooms_config(simulator)}, directory=directory
        ) as bot:
            await rooms_wait(lambda: simulator.members(21)[0].pings >= pings_before + 3)
            [listing] = await bot.chat("c1").say("!rooms", user="u1")
            assert listing.startswith(
                f"You are present in:\nperformer 21 as {member.display_nickname}"
            )
            report = service_of(bot).last_restore
            assert report is not None and len(report.restored) == 1 and report.dropped == []
            await bot.flush_alerts()
            assert bot.alerts_sent == []  # resumed silently
            assert len(simulator.calls_of("joinRoom")) == 1  # resumed, not rejoined

        # This time the shutdown could leave: nothing is kept.
        assert simulator.rooms() == {}
        assert presence_rows(directory) == []


async def test_restart_drops_a_purged_presence_and_tells_the_user(
    bot_harness, tmp_path, rooms_wait
):
    async with RoomsSimulator(key=ROOMS_KEY, purge_after=0.2, seed=3) as simulator:
        directory = tmp_path / "bot"
        directory.mkdir()
        await _join_and_crash(bot_harness, simulator, directory, "lobby")
        await rooms_wait(lambda: simulator.rooms() == {})  # the bot was down too long
        with sqlite3.connect(directory / "bot.db") as conn:  # and one row is garbage
            conn.execute(
                "insert into rooms_presence (performer_id, owner, platform, user_id, chat_id, "
                "nickname, joined_at) values (0, 'console:u9', 'console', 'u9', 'x', 'n', 'never')"
            )

        async with bot_harness(
            plugins={"rooms": rooms_config(simulator)}, directory=directory
        ) as bot:
            alert = await bot.wait_for_alert(lambda a: "Hal" in a.text)

            assert alert.chat_id == "lobby"
            assert alert.text == (
                "Hal: the bot restarted and your presence in performer 21's room could not be "
                "resumed: The rooms service refused the keep-alive ping: Customer is not in this "
                "room. Use !room join 21 to enter again."
            )
            report = service_of(bot).last_restore
            assert report is not None and report.damaged == 1 and len(report.dropped) == 1
            assert await bot.chat("lobby").say("!rooms", user="u1") == [
                "You are not in any room. Join one with !room join <performer id>."
            ]
            assert bot.failures == {}
        assert presence_rows(directory) == []
        assert simulator.calls_of("joinRoom")[1:] == []  # never rejoined on its own


async def test_shutdown_leaves_every_presence(bot_harness, sim, tmp_path):
    directory = tmp_path / "bot"
    directory.mkdir()
    async with bot_harness(plugins={"rooms": rooms_config(sim)}, directory=directory) as bot:
        chat = bot.chat()
        await chat.say("!room join 21", user="u1")
        await chat.say("!room join 22", user="u1")
        await chat.say("!room join 21", user="u2")
        assert sum(len(m) for m in sim.rooms().values()) == 3
        assert len(presence_rows(directory)) == 3

    assert sim.rooms() == {}
    assert [c.success for c in sim.calls_of("leaveRoom")] == [True, True, True]
    assert presence_rows(directory) == []
    pings = len(sim.calls_of("pingRoom"))
    await asyncio.sleep(PING * 3)
    assert len(sim.calls_of("pingRoom")) == pings


# -- the embedded default and the simulator command ------------------------------------------


async def test_simulate_true_alone_runs_the_bundled_simulator(bot_harness):
    async with bot_harness(plugins={"rooms": {"simulate": True}}) as bot:
        chat = bot.chat()
        service = service_of(bot)
        assert service.simulator is not None
        assert service.simulator.url.startswith("http://127.0.0.1:")

        [reply] = await chat.say("!room join 7", user="u1", name="Ivy")
        assert re.fullmatch(r"You are in performer 7's room as Ivy_\d{4}\. .*", reply)
        [member] = service.simulator.members(7)
        assert member.nickname == "Ivy"
        assert service.presence.ping_interval == 10.0  # the API's documented cadence
        await chat.say("!link rooms 55", user="u2")
        bot.approve_link("u2", "rooms")
        await chat.say("!room join 7", user="u2", name="Jon")
        assert await chat.say("!credits 9 u2", user="console") == [
            "u2's credits are now 9; the rooms service has them too."
        ]
        [status] = await chat.say("!status")
        assert "plugin rooms: up - 2 chat user presence(s) kept alive" in status
        assert await chat.say("!room leave", user="u1") == ["You left performer 7's room."]
        simulator = service.simulator
    assert simulator.rooms() == {}  # Jon was left on shutdown, before the simulator stopped


async def test_bot_simulator_hook_serves_the_api():
    simulator = rooms_plugin.bot_simulator(["--port", "0", "--key", "k1", "--registered", "5:3"])
    assert isinstance(simulator, RoomsSimulator)
    async with simulator:
        assert simulator.url.startswith("http://127.0.0.1:")
        async with RoomsClient(simulator.url, "k1", timeout=1.0) as client:
            await client.update_credits(UpdateCreditsRequest(5, 8))
        assert simulator.credits(5) == 8
