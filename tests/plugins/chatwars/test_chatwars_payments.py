"""Payments and payouts through chat, with the ledger: exactly once is the bar.

Every test checks both sides: what the simulated game did (``world.payments`` /
``world.payouts``, balances) and what the bot's ledger says.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from bot_plugins.chatwars.simulator import ChatWarsSimulator


def ledger(bot: Any, **filters: Any) -> list[Any]:
    return bot.bot.store.ledger_entries("chatwars", limit=100, **filters)


async def boss(chat: Any, text: str) -> list[str]:
    """An admin's command, answering yes to the confirmation a money command asks first (the
    question itself, which ends with "?", is left out of the replies)."""
    replies = await chat.say(text, user="boss", admin=True, confirm=True)
    return [r for r in replies if not r.endswith("?")]


# --------------------------------------------------------------------------- payments


async def test_pay_then_confirm_moves_pouches_once_and_the_ledger_says_so(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator, chatwars_link: Any
) -> None:
    world = chatwars_sim.world
    world.add_user(6101, pouches=10)
    balance = world.balance
    async with chatwars_bot() as bot:
        chatwars_link(bot, "u1", 6101)
        chat = bot.chat(kind="private")
        [asked] = await chat.say("!cw pay 5", user="u1")
        assert asked == (
            "ChatWars has sent you a confirmation code for 5 gold pouches (ChatWars keeps a "
            "fee of 4 gold). Send !cw confirm <code> within 5 minutes to pay, or !cw cancel."
        )
        [entry] = ledger(bot)
        assert (entry.kind, entry.status, entry.amount, entry.account) == (
            "payment",
            "authorized",
            5,
            "6101",
        )
        assert (entry.platform, entry.user_id, entry.fee, entry.debit) == ("console", "u1", 4, 496)
        # The id the game saw is the ledger's.
        [request] = [r for r in world.requests if r.get("action") == "authorizePayment"]
        assert request["payload"]["transactionId"] == entry.transaction_id

        # A second payment while this one waits for its code is refused (the code would be
        # ambiguous), and nothing is written.
        [refused] = await chat.say("!cw pay 1", user="u1")
        assert refused.startswith("You already have a payment of 5 gold pouches waiting")
        assert len(ledger(bot)) == 1

        code = world.last_code(6101, "payment")
        [paid] = await chat.say(f"!cw confirm {code}", user="u1")
        assert paid == (
            f"Paid: 5 gold pouches went to the bot (fee 4 gold). Thank you! "
            f"(transaction {entry.transaction_id[:8]})"
        )
        [done] = ledger(bot)
        assert (done.status, done.result, done.fee, done.debit) == ("done", "Ok", 4, 496)
        assert [(t.transaction_id, t.pouches) for t in world.payments] == [
            (entry.transaction_id, 5)
        ]
        assert world.users[6101].pouches == 5 and world.balance == balance + 496
        [pay] = [r for r in world.requests if r.get("action") == "pay"]
        assert pay["payload"]["transactionId"] == entry.transaction_id

        # Confirming again: nothing is waiting; nothing moves.
        [again] = await chat.say(f"!cw confirm {code}", user="u1")
        assert again.startswith("You have no payment waiting for a confirmation code.")
        assert len(world.payments) == 1


async def test_wrong_codes_keep_the_payment_until_the_last_try(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator, chatwars_link: Any
) -> None:
    world = chatwars_sim.world
    async with chatwars_bot() as bot:
        chatwars_link(bot, "u1", 6102)
        chat = bot.chat(kind="private")
        await chat.say("!cw pay 2", user="u1")
        [first] = await chat.say("!cw confirm 0000", user="u1")
        assert first.startswith("ChatWars refused the payment: the confirmation code is wrong")
        assert first.endswith("Check the code and try again (2 more tries).")
        assert ledger(bot)[0].status == "authorized"
        assert await chat.say("!cw confirm x!y", user="u1") == [
            "The confirmation code must be the letters and digits the ChatWars bot sent."
        ]
        # The right code still works after a wrong one.
        await chat.say(f"!cw confirm {world.last_code(6102, 'payment')}", user="u1")
        assert ledger(bot)[0].status == "done" and len(world.payments) == 1

        await chat.say("!cw pay 1", user="u1")
        for _ in range(2):
            await chat.say("!cw confirm 0000", user="u1")
        [last] = await chat.say("!cw confirm 0000", user="u1")
        assert last.endswith(
            "The payment is cancelled; start a new one with !cw pay <pouches> if you still "
            "want to pay."
        )
        entry = ledger(bot)[0]
        assert (entry.status, entry.result) == ("failed", "AuthorizationFailed")
        assert len(world.payments) == 1


async def test_cancel_and_expiry(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator, chatwars_link: Any
) -> None:
    world = chatwars_sim.world
    async with chatwars_bot(payment_expiry=0.3) as bot:
        chatwars_link(bot, "u1", 6103)
        chat = bot.chat(kind="private")
        await chat.say("!cw pay 1", user="u1")
        assert await chat.say("!cw cancel", user="u1") == [
            "Your payment of 1 gold pouch is cancelled; nothing was charged."
        ]
        assert ledger(bot)[0].status == "cancelled"
        assert await chat.say("!cw cancel", user="u1") == [
            "You have no payment waiting for a confirmation code."
        ]

        await chat.say("!cw pay 2", user="u1")
        tid = ledger(bot)[0].transaction_id
        store = bot.bot.store
        # The expiry job marks it, without anyone typing anything.
        await chatwars_sim.wait_until(lambda: store.ledger_get(tid).status == "expired", 3)
        [late] = await chat.say(f"!cw confirm {world.last_code(6103, 'payment')}", user="u1")
        assert late.startswith("You have no payment waiting")
        assert world.payments == []


async def test_insufficient_pouches_fails_the_payment_row(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator, chatwars_link: Any
) -> None:
    chatwars_sim.world.add_user(6104, pouches=1)
    async with chatwars_bot() as bot:
        chatwars_link(bot, "u1", 6104)
        assert await bot.chat(kind="private").say("!cw pay 3", user="u1") == [
            "You do not have enough gold pouches in ChatWars for this payment."
        ]
        [entry] = ledger(bot)
        assert (entry.status, entry.result) == ("failed", "InsufficientFunds")
        # Bad input writes nothing.
        for text in ("!cw pay 0", "!cw pay -2", "!cw pay 99999999"):
            [reply] = await bot.chat(kind="private").say(text, user="u1")
            assert reply.startswith("The amount can") or reply.startswith("The amount must")
        assert len(ledger(bot)) == 1


async def test_pay_reply_lost_then_confirm_again_settles_it_once(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator, chatwars_link: Any
) -> None:
    world = chatwars_sim.world
    async with chatwars_bot(timeout=0.5) as bot:
        chatwars_link(bot, "u1", 6105)
        chat = bot.chat(kind="private")
        await chat.say("!cw pay 2", user="u1")
        code = world.last_code(6105, "payment")
        chatwars_sim.drop_replies("pay")
        [doubt] = await chat.say(f"!cw confirm {code}", user="u1")
        assert doubt.startswith("ChatWars did not answer in time, so the payment may or may not")
        assert ledger(bot)[0].status == "unknown"
        assert len(world.payments) == 1  # it happened; the bot did not hear
        [settled] = await chat.say(f"!cw confirm {code}", user="u1")
        assert settled.startswith("Your payment of 2 gold pouches had already gone through")
        entry = ledger(bot)[0]
        assert (entry.status, entry.result) == ("done", "DuplicateTransaction")
        assert len(world.payments) == 1


# --------------------------------------------------------------------------- payouts


async def test_payout_writes_the_ledger_first_and_escapes_the_message(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator, chatwars_link: Any
) -> None:
    world = chatwars_sim.world
    balance = world.balance
    async with chatwars_bot() as bot:
        chatwars_link(bot, "bob", 6201)
        chat = bot.chat(kind="private")
        [reply] = await boss(chat, "!cw payout bob 3 You won <b>first</b> & 300💰")
        [entry] = ledger(bot)
        assert reply == (
            f"Paid 3 gold pouches to Telegram user 6201. (transaction {entry.transaction_id[:8]})"
        )
        assert (entry.kind, entry.status, entry.result, entry.amount) == ("payout", "done", "Ok", 3)
        assert (entry.platform, entry.user_id, entry.account) == ("console", "bob", "6201")
        [payout] = world.payouts
        assert payout.transaction_id == entry.transaction_id
        assert payout.message == "You won &lt;b&gt;first&lt;/b&gt; &amp; 300💰"
        assert world.balance == balance - 300 and world.users[6201].pouches == 13

        # By linked Telegram id too; an admin command is audited.
        await boss(chat, "!cw payout 6201 1")
        assert len(world.payouts) == 2
        audit = bot.bot.store.audit_rows(5)
        assert audit[0]["command"] == "cw payout" and audit[0]["outcome"] == "ok"


async def test_payout_refusals_write_nothing_or_a_failed_row(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator, chatwars_link: Any
) -> None:
    world = chatwars_sim.world
    async with chatwars_bot() as bot:
        chatwars_link(bot, "bob", 6202)
        chat = bot.chat(kind="private")
        assert await chat.say("!cw payout bob 1", user="u1") == ["This command is for admins only."]
        [long] = await boss(chat, "!cw payout bob 1 " + "x" * 98 + " &")
        assert long.startswith("The payout message is too long: at most 100 characters")
        [nobody] = await boss(chat, "!cw payout carol 1")
        assert nobody.startswith("Nobody named carol has linked a ChatWars account")
        assert ledger(bot) == [] and world.payouts == []

        world.balance = 150
        assert await boss(chat, "!cw payout bob 2") == [
            "The bot's ChatWars balance is too low for this payout."
        ]
        [entry] = ledger(bot)
        assert (entry.status, entry.result) == ("failed", "InsufficientFunds")
        assert world.payouts == []


async def test_a_payout_whose_reply_is_lost_is_sent_once_then_an_admin_retry_shows_the_balance(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator, chatwars_link: Any
) -> None:
    world = chatwars_sim.world
    async with chatwars_bot(timeout=0.5) as bot:
        chatwars_link(bot, "bob", 6203)
        chatwars_sim.drop_replies("payout")
        chat = bot.chat(kind="private")
        [reply] = await boss(chat, "!cw payout bob 4")
        [entry] = ledger(bot)
        short = entry.transaction_id[:8]
        assert reply.startswith("ChatWars did not confirm the payout in time")
        assert (entry.status, entry.result) == ("unknown", "Timeout")
        # Sent once: never re-sent by itself (the money may have left).
        sent = [r for r in world.requests if r["action"] == "payout"]
        assert len(sent) == 1 and len(world.payouts) == 1

        # The admin retries: first the balance (getInfo), then the question, then the send.
        asked = len([r for r in world.requests if r["action"] == "getInfo"])
        [question, retried] = await chat.say(
            f"!cw retry {short}", user="boss", admin=True, confirm=True
        )
        assert len([r for r in world.requests if r["action"] == "getInfo"]) == asked + 1
        assert question == (
            f"Payout {short}: 4 gold pouches (400 gold) to Telegram user 6203 with no message; "
            "its outcome is unknown (Timeout). The bot's ChatWars balance is now 99,600 gold. "
            "Send it again with the same transaction id (the game refuses to pay one id twice)?"
        )
        assert (
            retried
            == f"Payout {short} of 4 gold pouches to Telegram user 6203: it had gone through already."
        )
        [entry] = ledger(bot)
        assert (entry.status, entry.result) == ("done", "DuplicateTransaction")
        ids = [r["payload"]["transactionId"] for r in world.requests if r["action"] == "payout"]
        assert ids == [entry.transaction_id, entry.transaction_id]
        assert len(world.payouts) == 1


async def test_payout_and_retry_are_sent_only_on_a_yes(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator, chatwars_link: Any
) -> None:
    world = chatwars_sim.world
    async with chatwars_bot(timeout=0.5) as bot:
        chatwars_link(bot, "bob", 6210)
        chat = bot.chat(kind="private")
        [question, no] = await chat.say(
            "!cw payout bob 3 well done", user="boss", admin=True, confirm=False
        )
        assert question == (
            "Send 3 gold pouches (300 gold) from the bot's ChatWars balance to Telegram user "
            '6210, with the message "well done"?'
        )
        assert no == "Cancelled; no payout was sent."
        assert ledger(bot) == [] and world.payouts == []
        assert not [r for r in world.requests if r["action"] == "payout"]

        # Typed answers where the transport has no buttons.
        [typed] = await chat.say("!cw payout bob 1", user="boss", admin=True)
        assert typed.endswith("with no message? (yes/no)")
        [paid] = await chat.say("yes", user="boss", admin=True)
        assert paid.startswith("Paid 1 gold pouch to Telegram user 6210.")

        chatwars_sim.drop_replies("payout")
        await boss(chat, "!cw payout bob 2")
        unknown = next(e for e in ledger(bot) if e.status == "unknown")
        [_, kept] = await chat.say(
            f"!cw retry {unknown.transaction_id[:8]}", user="boss", admin=True, confirm=False
        )
        assert kept == f"Cancelled; payout {unknown.transaction_id[:8]} was not sent again."
        assert bot.bot.store.ledger_get(unknown.transaction_id).status == "unknown"
        assert len([r for r in world.requests if r["action"] == "payout"]) == 2


async def test_a_late_refusal_of_a_retried_payout_keeps_it_unknown(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator, chatwars_link: Any
) -> None:
    """The first try's reply is lost; the retry times out too and its late answer is a
    refusal. That refusal says nothing about the first try, so the row stays unknown."""
    world = chatwars_sim.world
    async with chatwars_bot(timeout=0.3) as bot:
        chatwars_link(bot, "bob", 6211)
        chat = bot.chat(kind="private")
        chatwars_sim.drop_replies("payout")
        await boss(chat, "!cw payout bob 2")
        [entry] = ledger(bot)
        world.inject("TryAgain", action="payout")
        chatwars_sim.hold_replies()
        [reply] = await boss(chat, f"!cw retry {entry.transaction_id[:8]}")
        assert reply.startswith("ChatWars did not confirm the payout in time")
        replies_before = chatwars_sim.replies_sent
        chatwars_sim.release_replies()
        await chatwars_sim.wait_until(lambda: chatwars_sim.replies_sent > replies_before, 5)
        store = bot.bot.store
        await chatwars_sim.wait_until(
            lambda: store.ledger_get(entry.transaction_id).result == "TryAgain", 5
        )
        assert store.ledger_get(entry.transaction_id).status == "unknown"
        assert len(world.payouts) == 1


async def test_unanswered_payout_is_unknown_then_a_late_reply_settles_the_ledger(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator, chatwars_link: Any
) -> None:
    world = chatwars_sim.world
    async with chatwars_bot(timeout=0.3) as bot:
        chatwars_link(bot, "bob", 6204)
        chatwars_sim.hold_replies()
        [reply] = await boss(bot.chat(kind="private"), "!cw payout bob 2")
        [entry] = ledger(bot)
        tid = entry.transaction_id
        assert reply.startswith("ChatWars did not confirm the payout in time; it may or may not")
        assert f"!cw retry {tid[:8]}" in reply
        assert entry.status == "unknown"
        [status] = await bot.chat(kind="private").say("!status")
        assert "plugin chatwars: degraded - 1 ChatWars payout has an unknown outcome" in status

        chatwars_sim.release_replies()
        store = bot.bot.store
        await chatwars_sim.wait_until(lambda: store.ledger_get(tid).status == "done", 5)
        assert len(world.payouts) == 1

        # Retrying a settled payout sends nothing.
        [again] = await boss(bot.chat(kind="private"), f"!cw retry {tid[:8]}")
        assert again == f"Payout {tid[:8]} is already done; nothing was sent."
        assert len([r for r in world.requests if r["action"] == "payout"]) == 1


async def test_retry_of_an_unknown_payout_cannot_pay_twice(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator, chatwars_link: Any
) -> None:
    world = chatwars_sim.world
    async with chatwars_bot(timeout=0.3, payout_attempts=1) as bot:
        chatwars_link(bot, "bob", 6205)
        chatwars_sim.drop_replies("payout")
        await boss(bot.chat(kind="private"), "!cw payout bob 1")
        [entry] = ledger(bot)
        assert entry.status == "unknown"
        [retried] = await boss(bot.chat(kind="private"), f"!cw retry {entry.transaction_id[:8]}")
        assert retried.endswith(": it had gone through already.")
        assert ledger(bot)[0].status == "done" and len(world.payouts) == 1
        [bad] = await boss(bot.chat(kind="private"), "!cw retry zzzz")
        assert bad == "No ChatWars transaction starts with 'zzzz'."


async def test_connection_broken_mid_payout_pays_exactly_once(
    chatwars_bot: Callable[..., Any],
    chatwars_sim: ChatWarsSimulator,
    chatwars_link: Any,
    rabbitmq_broker: Any,
) -> None:
    world = chatwars_sim.world
    balance = world.balance
    async with chatwars_bot(timeout=15.0) as bot:
        chatwars_link(bot, "bob", 6206)
        client = bot.client("chatwars")
        chatwars_sim.hold_replies()
        command = asyncio.create_task(boss(bot.chat(kind="private"), "!cw payout bob 3 prize"))
        await chatwars_sim.wait_until(lambda: len(world.payouts) == 1)
        # The game has paid; its reply is held. Every connection to the broker drops.
        await asyncio.to_thread(rabbitmq_broker.close_all_connections, "test: network failure")
        await chatwars_sim.wait_until(lambda: client.reconnects >= 1, timeout=10)
        chatwars_sim.release_replies()

        [reply] = await command
        assert reply.startswith("Paid 3 gold pouches to Telegram user 6206.")
        [entry] = ledger(bot)
        assert (entry.status, entry.result) == ("done", "Ok")
        assert [t.transaction_id for t in world.payouts] == [entry.transaction_id]
        assert world.balance == balance - 300


async def test_balance_and_ledger(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator, chatwars_link: Any
) -> None:
    world = chatwars_sim.world
    world.balance = 123_456
    async with chatwars_bot() as bot:
        chat = bot.chat(kind="private")
        assert await boss(chat, "!cw balance") == [
            "The bot's ChatWars balance is 123,456 gold (1,234 gold pouches can be paid out)."
        ]
        assert await boss(chat, "!cw ledger") == ["The ChatWars ledger has no entries."]
        chatwars_link(bot, "bob", 6207)
        chatwars_link(bot, "u1", 6208)
        await boss(chat, "!cw payout bob 1 hi")
        await chat.say("!cw pay 2", user="u1")
        await chat.say(f"!cw confirm {world.last_code(6208, 'payment')}", user="u1")
        [rows] = await boss(chat, "!cw ledger")
        lines = rows.splitlines()
        assert lines[0] == "Latest ChatWars payments and payouts (newest first):"
        assert lines[1].endswith(
            "payment 2 gold pouches from Telegram 6208: done, fee 2 gold, credited 198 gold"
        )
        assert lines[2].endswith("payout 1 gold pouch to Telegram 6207: done")
        [bobs] = await boss(chat, "!cw ledger bob")
        assert len(bobs.splitlines()) == 2 and "6207" in bobs
        assert await chat.say("!cw ledger", user="u1") == ["This command is for admins only."]


async def test_fifty_concurrent_payouts_each_reach_their_player_once(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator, chatwars_link: Any
) -> None:
    world = chatwars_sim.world
    users = [6300 + i for i in range(50)]
    async with chatwars_bot() as bot:
        for uid in users:
            chatwars_link(bot, f"p{uid}", uid)
        before = {uid: world.users[uid].pouches for uid in users}
        replies = await asyncio.gather(
            *(boss(bot.chat(f"admin{uid}"), f"!cw payout p{uid} {1 + uid % 3}") for uid in users)
        )
        for uid, [reply] in zip(users, replies, strict=True):
            n = 1 + uid % 3
            noun = "gold pouch" if n == 1 else "gold pouches"
            assert reply.startswith(f"Paid {n} {noun} to Telegram user {uid}."), reply
        entries = ledger(bot)
        assert len(entries) == 50 and {e.status for e in entries} == {"done"}
        assert sorted((t.user_id, t.pouches, t.transaction_id) for t in world.payouts) == sorted(
            (int(e.account), e.amount, e.transaction_id) for e in entries
        )
        for uid in users:
            assert world.users[uid].pouches == before[uid] + 1 + uid % 3


async def test_payouts_interrupted_by_a_stop_are_settled_once_after_the_restart(
    bot_harness: Callable[..., Any],
    chatwars_settings: dict[str, Any],
    chatwars_sim: ChatWarsSimulator,
    chatwars_link: Any,
    tmp_path: Any,
) -> None:
    world = chatwars_sim.world
    directory = tmp_path / "kept"
    directory.mkdir()
    options = {
        "plugins": {"chatwars": chatwars_settings},
        "directory": directory,
        "admins": {"console": ["boss"]},
    }
    async with bot_harness(**options) as bot:
        token = chatwars_link(bot, "bob", 6401)
        store = bot.bot.store
        # As the bot leaves them when it dies between sending a payout and its reply: one
        # the game carried out, one that never reached it.
        sent = store.ledger_create(
            service="chatwars",
            kind="payout",
            platform="console",
            user_id="bob",
            account="6401",
            amount=2,
        ).transaction_id
        lost = store.ledger_create(
            service="chatwars",
            kind="payout",
            platform="console",
            user_id="bob",
            account="6401",
            amount=3,
        ).transaction_id
        body = {
            "token": token.token,
            "action": "payout",
            "payload": {"transactionId": sent, "amount": {"pouches": 2}, "message": ""},
        }
        assert world.handle(json.dumps(body).encode()).reply["result"] == "Ok"
    balance = world.balance

    async with bot_harness(**options) as bot:
        assert await bot.client("chatwars").wait_connected(5)
        store = bot.bot.store
        assert {store.ledger_get(t).status for t in (sent, lost)} == {"unknown"}
        assert store.ledger_get(sent).result == "Interrupted"
        [status] = await bot.chat(kind="private").say("!status")
        assert "plugin chatwars: degraded - 2 ChatWars payouts have an unknown outcome" in status

        chat = bot.chat(kind="private")
        [first] = await boss(chat, f"!cw retry {sent[:8]}")
        assert first.endswith(": it had gone through already.")
        [second] = await boss(chat, f"!cw retry {lost[:8]}")
        assert second.endswith(": it is done.")
        assert [(t.transaction_id, t.pouches) for t in world.payouts] == [(sent, 2), (lost, 3)]
        assert world.balance == balance - 300
        assert {store.ledger_get(t).status for t in (sent, lost)} == {"done"}
        [status] = await bot.chat(kind="private").say("!status")
        assert "plugin chatwars: up" in status


async def test_try_again_keeps_the_transaction_id_for_a_safe_retry(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator, chatwars_link: Any
) -> None:
    world = chatwars_sim.world
    async with chatwars_bot() as bot:
        chatwars_link(bot, "bob", 6501)
        chat = bot.chat(kind="private")
        world.inject("TryAgain", action="payout", user_id=6501)
        [reply] = await boss(chat, "!cw payout bob 2")
        [entry] = ledger(bot)
        short = entry.transaction_id[:8]
        assert reply == (
            "ChatWars is having technical trouble; please try again in a moment. "
            f"!cw retry {short} sends the same payout again (it cannot be paid twice)."
        )
        assert (entry.status, entry.result) == ("failed", "TryAgain") and world.payouts == []
        [retried] = await boss(chat, f"!cw retry {short}")
        assert retried.endswith(": it is done.")
        assert [t.transaction_id for t in world.payouts] == [entry.transaction_id]

        # A definitive refusal cannot be retried.
        world.inject("NoSuchUser", action="payout", user_id=6501)
        await boss(chat, "!cw payout bob 1")
        refused = ledger(bot)[0]
        [no] = await boss(chat, f"!cw retry {refused.transaction_id[:8]}")
        assert no == (
            "That payout is failed (NoSuchUser); it cannot be retried. Start a new one with "
            "!cw payout."
        )
        assert len(world.payouts) == 1


async def test_a_refused_pay_leaves_a_payment_in_doubt_or_open_as_it_was(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator, chatwars_link: Any
) -> None:
    world = chatwars_sim.world
    async with chatwars_bot(timeout=0.5) as bot:
        chatwars_link(bot, "u1", 6502)
        chat = bot.chat(kind="private")
        await chat.say("!cw pay 1", user="u1")
        code = world.last_code(6502, "payment")
        world.inject("BattleIsNear", action="pay", user_id=6502)
        [busy] = await chat.say(f"!cw confirm {code}", user="u1")
        assert busy.startswith("A battle is about to begin")
        assert busy.endswith(
            "Your payment is still open: send !cw confirm <code> again (it "
            "cannot be charged twice)."
        )
        assert ledger(bot)[0].status == "authorized"

        chatwars_sim.drop_replies("pay")
        await chat.say(f"!cw confirm {code}", user="u1")  # happened; reply lost
        assert ledger(bot)[0].status == "unknown"
        world.inject("InsufficientFunds", action="pay", user_id=6502)
        [refused] = await chat.say(f"!cw confirm {code}", user="u1")
        assert refused.startswith("You do not have enough gold pouches")
        assert ledger(bot)[0].status == "unknown"  # the lost one may have gone: not failed
        await chat.say(f"!cw confirm {code}", user="u1")
        entry = ledger(bot)[0]
        assert (entry.status, entry.result) == ("done", "DuplicateTransaction")
        assert len(world.payments) == 1


async def test_a_payout_reply_arriving_after_a_restart_settles_the_ledger(
    bot_harness: Callable[..., Any],
    chatwars_settings: dict[str, Any],
    chatwars_sim: ChatWarsSimulator,
    chatwars_link: Any,
    tmp_path: Any,
) -> None:
    """The replies wait in the app's queue while the bot is down; after the restart they
    match no request in flight. One still settles the only unknown payout of its player;
    replies naming a player with two unknown payouts settle neither (they cannot be told
    apart)."""
    world = chatwars_sim.world
    directory = tmp_path / "kept"
    directory.mkdir()
    options = {
        "plugins": {"chatwars": {**chatwars_settings, "timeout": 0.3}},
        "directory": directory,
        "admins": {"console": ["boss"]},
    }
    async with bot_harness(**options) as bot:
        assert await bot.client("chatwars").wait_connected(5)
        chatwars_link(bot, "bob", 6501)
        chatwars_link(bot, "ann", 6502)
        chatwars_sim.hold_replies()
        chat = bot.chat(kind="private")
        for command in ("!cw payout bob 3", "!cw payout ann 1"):
            [reply] = await boss(chat, command)
            assert reply.startswith("ChatWars did not confirm the payout in time")
        # A second payout to ann waits behind the unanswered one and is never sent.
        [busy] = await boss(chat, "!cw payout ann 4")
        assert busy == (
            "ChatWars was not asked: an earlier request for this player is still unanswered; "
            "nothing was sent. Please try again in a while."
        )
        # ann also has an older payout interrupted by a stop: two unknown payouts.
        store = bot.bot.store
        older = store.ledger_create(
            service="chatwars",
            kind="payout",
            platform="console",
            user_id="ann",
            account="6502",
            amount=2,
        ).transaction_id
        store.ledger_update(older, status="unknown", result="Interrupted")
        entries = {e.amount: e for e in ledger(bot)}
        assert entries[4].status == "failed" and entries[4].result == "NotConnected"
        assert [entries[n].status for n in (1, 2, 3)] == ["unknown"] * 3
    # The bot is down; the game's answers go to the app's queue.
    chatwars_sim.release_replies()
    await chatwars_sim.wait_until(lambda: chatwars_sim.replies_sent >= 2, 10)

    async with bot_harness(**options) as bot:
        store = bot.bot.store
        bob = entries[3].transaction_id
        await chatwars_sim.wait_until(lambda: store.ledger_get(bob).status == "done", 10)
        assert store.ledger_get(bob).result == "Ok"
        assert [store.ledger_get(entries[n].transaction_id).status for n in (1, 2)] == [
            "unknown",
            "unknown",
        ]
        assert len(world.payouts) == 2


async def test_cw_retry_still_asks_when_the_balance_cannot_be_read(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator, chatwars_link: Any
) -> None:
    world = chatwars_sim.world
    async with chatwars_bot(timeout=0.5) as bot:
        chatwars_link(bot, "bob", 6601)
        chat = bot.chat(kind="private")
        chatwars_sim.drop_replies("payout")
        await boss(chat, "!cw payout bob 1 hi & bye")
        [entry] = ledger(bot)
        world.inject("TryAgain", action="getInfo")
        [question, done] = await chat.say(
            f"!cw retry {entry.transaction_id[:8]}", user="boss", admin=True, confirm=True
        )
        assert question == (
            f"Payout {entry.transaction_id[:8]}: 1 gold pouch (100 gold) to Telegram user 6601 "
            'with the message "hi & bye"; its outcome is unknown (Timeout). The bot\'s ChatWars '
            "balance could not be read (ChatWars is having technical trouble; please try again "
            "in a moment). Send it again with the same transaction id (the game refuses to pay "
            "one id twice)?"
        )
        assert done.endswith(": it had gone through already.")
        # The retry sent the same (escaped) message as the first try.
        sent = [r["payload"]["message"] for r in world.requests if r["action"] == "payout"]
        assert sent == ["hi &amp; bye", "hi &amp; bye"]
        assert len(world.payouts) == 1
