"""Links with proof levels and admin approval, end to end through the harness.

DeepBot runs as its bundled simulator over a real websocket (``simulate: true``): its link
flow proves nothing, so it is the plugin whose claims wait for an admin.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.testing import BotHarness

ADMINS = {"console": ["boss"], "telegram": ["900"]}
WAITING = (
    "Your deepbot link to alice is waiting for an admin's approval (claim #{n}); !give needs "
    "an approved link. You will be told when an admin has decided."
)


def deepbot(**section: Any) -> dict[str, Any]:
    return {"plugins": {"deepbot": {"simulate": True, **section}}, "admins": ADMINS}


async def points(bot: BotHarness, name: str) -> Decimal:
    (reply,) = await bot.chat("reader").say(f"!points {name}", user="reader")
    found = re.search(r"(-?[\d.]+) points", reply)
    assert found, reply
    return Decimal(found.group(1))


def audit(bot: BotHarness) -> list[tuple[str, str, str]]:
    """(user, command, outcome), oldest first."""
    rows = reversed(bot.bot.store.audit_rows(limit=200))
    return [(r["user_id"], r["command"], r["outcome"]) for r in rows]


async def test_a_claim_cannot_give_until_an_admin_approves_it(bot_harness: Any) -> None:
    async with bot_harness(**deepbot()) as bot:
        chat = bot.chat("stream", platform="telegram")
        (reply,) = await chat.say("!link deepbot alice", user="111", name="Alice Chat")
        assert reply.startswith("You claimed DeepBot user alice. An admin has to approve it")
        assert "(claim #1)" in reply
        # Reading public data works with a claim, acting on the account does not.
        assert await chat.say("!points", user="111") == ["alice has 500.00 points"]
        before = await points(bot, "bob")
        assert await chat.say("!give bob 5", user="111") == [WAITING.format(n=1)]
        assert await points(bot, "bob") == before
        assert await points(bot, "alice") == Decimal(500)
        (links,) = await chat.say("!links", user="111")
        assert links == "deepbot: alice (claimed, waiting for an admin: claim #1)"

        admin = bot.chat("admins", platform="telegram")
        (pending,) = await admin.say("!links pending", user="900")
        assert re.fullmatch(r"#1 telegram:111 \(Alice Chat\) deepbot alice, \d+ s ago", pending)
        assert await admin.say("!links approve 1", user="900") == [
            "Approved claim #1: telegram:111 is linked to deepbot alice. They were told."
        ]
        told = await bot.wait_for_alert(lambda a: a.chat_id == "stream")
        assert (told.platform, told.text) == (
            "telegram",
            "Alice Chat: an admin approved your deepbot link to alice (claim #1).",
        )
        assert ("900", "links approve", "approved") in audit(bot)
        assert ("900", "links approve", "ok") in audit(bot)
        row = bot.bot.store.audit_rows(limit=1)[0]
        assert '"claim": 1' in row["arguments"] or '"number": 1' in row["arguments"]

        (gave,) = await chat.say("!give bob 5", user="111")
        assert "waiting for an admin" not in gave and "link" not in gave, gave
        assert await points(bot, "bob") == before + 5
        assert await points(bot, "alice") == Decimal(495)
        assert await chat.say("!links", user="111") == ["deepbot: alice (approved by an admin)"]
        assert await admin.say("!links pending", user="900") == ["No link claims are waiting."]
        assert await admin.say("!links approve 1", user="900") == ["Claim #1 is already approved."]


async def test_a_rejected_claim_removes_the_link_and_tells_the_claimant(bot_harness: Any) -> None:
    async with bot_harness(**deepbot()) as bot:
        chat = bot.chat("lobby")
        await chat.say("!link deepbot alice", user="u1", name="mallory")
        admin = bot.chat("ops")
        assert await admin.say("!links reject 1", user="boss") == [
            "Rejected claim #1; the claimed link is removed and they were told."
        ]
        told = await bot.wait_for_alert(lambda a: a.chat_id == "lobby")
        assert told.text == (
            "mallory: an admin rejected your claim to deepbot account alice (claim #1), "
            "so it is not linked."
        )
        assert bot.bot.store.get_link("console", "u1", "deepbot") is None
        assert ("boss", "links reject", "rejected") in audit(bot)
        assert await chat.say("!give bob 5", user="u1") == [
            "You need to link your deepbot account first: !link deepbot <name>"
        ]
        # The account is free again for its real owner.
        assert (await chat.say("!link deepbot alice", user="u2"))[0].startswith("You claimed")
        assert await admin.say("!links reject 1", user="boss") == ["Claim #1 is already rejected."]
        assert await admin.say("!links approve 99", user="boss") == [
            "There is no link claim #99. See !links pending."
        ]


async def test_only_admins_settle_claims(bot_harness: Any) -> None:
    async with bot_harness(**deepbot()) as bot:
        chat = bot.chat()
        await chat.say("!link deepbot alice", user="u1")
        for text in ("!links pending", "!links approve 1", "!links reject 1"):
            assert await chat.say(text, user="u1") == ["This command is for admins only."]
        assert bot.bot.store.pending_claim_count() == 1
        assert await chat.say("!give bob 1", user="u1") == [WAITING.format(n=1)]


async def test_an_admins_own_claim_is_approved_at_once(bot_harness: Any) -> None:
    async with bot_harness(**deepbot()) as bot:
        chat = bot.chat()
        assert await chat.say("!link deepbot alice", user="boss") == [
            "You are now linked to DeepBot user alice. As you are an admin, it is approved at "
            "once. Try !points."
        ]
        assert bot.bot.store.pending_claim_count() == 0
        assert ("boss", "links approve", "approved at once: an admin's own claim") in audit(bot)
        before = await points(bot, "bob")
        (gave,) = await chat.say("!give bob 5", user="boss")
        assert "waiting for an admin" not in gave, gave
        assert await points(bot, "bob") == before + 5


async def test_link_approval_none_trusts_claims(bot_harness: Any) -> None:
    async with bot_harness(**deepbot(link_approval="none")) as bot:
        chat = bot.chat()
        assert await chat.say("!link deepbot alice", user="u1") == [
            "You are now linked to DeepBot user alice. Try !points."
        ]
        assert bot.bot.store.pending_claim_count() == 0
        assert await chat.say("!links", user="u1") == [
            "deepbot: alice (claimed; counts as approved here)"
        ]
        before = await points(bot, "bob")
        (gave,) = await chat.say("!give bob 5", user="u1")
        assert "waiting for an admin" not in gave, gave
        assert await points(bot, "bob") == before + 5


async def test_tightening_link_approval_later_applies_to_old_claims(
    bot_harness: Any, tmp_path: Path
) -> None:
    """A claim made under ``none`` is not approved: switching to ``admins`` stops it."""
    directory = tmp_path / "db"
    directory.mkdir()
    async with bot_harness(**deepbot(link_approval="none"), directory=directory) as bot:
        await bot.chat().say("!link deepbot alice", user="u1")
    async with bot_harness(**deepbot(), directory=directory) as bot:
        assert await bot.chat().say("!give bob 5", user="u1") == [
            "Your deepbot link to alice is only claimed, and !give needs one an admin approved. "
            "Link again (!link deepbot <name>) to ask an admin."
        ]
        (reply,) = await bot.chat().say("!link deepbot alice", user="u1")
        assert "(claim #1)" in reply


async def test_one_account_per_service_across_platforms(bot_harness: Any) -> None:
    async with bot_harness(**deepbot()) as bot:
        await bot.chat("c").say("!link deepbot alice", user="u1")
        taken = (
            "alice is already linked to another chat user for deepbot. If it is yours, ask an "
            "admin."
        )
        assert await bot.chat("t", platform="telegram").say("!link deepbot ALICE", user="222") == [
            taken
        ]
        assert await bot.chat("d", platform="discord").say("!link deepbot alice", user="3") == [
            taken
        ]
        assert bot.bot.store.get_link("telegram", "222", "deepbot") is None
        assert bot.bot.store.pending_claim_count() == 1  # no claim for the refused ones
        # An approved link holds the account too.
        bot.approve_link("u1", "deepbot")
        assert await bot.chat("t", platform="telegram").say("!link deepbot alice", user="222") == [
            taken
        ]


async def test_admins_hear_of_claims_and_status_counts_them(bot_harness: Any) -> None:
    async with bot_harness(**deepbot()) as bot:
        admin = bot.chat("admin-room", platform="telegram")
        assert await admin.say("!links alerts on", user="900") == [
            "This chat now receives links.pending alerts."
        ]
        assert await bot.chat().say("!links alerts on", user="u1") == [
            "This command is for admins only."
        ]
        await bot.chat("lobby").say("!link deepbot bob", user="u7", name="eve")
        alert = await bot.wait_for_alert(lambda a: a.chat_id == "admin-room")
        assert re.fullmatch(
            r"New link claim #1 console:u7 \(eve\) deepbot bob, \d+ s ago\. "
            r"Approve with !links approve 1 or reject with !links reject 1\.",
            alert.text,
        )
        (status,) = await admin.say("!status", user="900")
        assert "link claims: 1 waiting for an admin (!links pending)" in status.splitlines()
        (status,) = await bot.chat().say("!status", user="u1")
        assert "link claims" not in status
        # Claiming the same account again does not alert twice.
        await bot.chat("lobby").say("!link deepbot bob", user="u7", name="eve")
        await bot.flush_alerts()
        assert len([a for a in bot.alerts_sent if a.chat_id == "admin-room"]) == 1


async def test_stale_claims_change_nothing(bot_harness: Any) -> None:
    async with bot_harness(**deepbot()) as bot:
        chat = bot.chat()
        await chat.say("!link deepbot alice", user="u1")
        # Relinking to another account withdraws the first claim; unlinking the second.
        (reply,) = await chat.say("!link deepbot carol", user="u1")
        assert "(claim #2)" in reply
        assert await chat.say("!links approve 1", user="boss") == ["Claim #1 is already withdrawn."]
        assert await chat.say("!unlink deepbot", user="u1") == ["Your deepbot link is removed."]
        assert await chat.say("!links approve 2", user="boss") == ["Claim #2 is already withdrawn."]
        assert bot.bot.store.get_link("console", "u1", "deepbot") is None


LINKER = '''
from bot import Permission, command, hookimpl
from bot.links import Proof

@command("acct link", link_proof=Proof.CLAIMED)
async def acct_link(ctx, account: str) -> str:
    """Link an account."""
    outcome = await ctx.claim_link(account)
    return "pending" if outcome.pending else "linked"

@command(permission=Permission.LINKED)
async def mine(ctx) -> str:
    """Needs a link."""
    return "account " + await ctx.linked_account()

@command(trusted_link=True)
async def spend(ctx) -> str:
    """Acts on the account."""
    return "spent from " + await ctx.linked_account()

@hookimpl
def bot_commands():
    return [acct_link, mine, spend]
'''


@pytest.fixture
def linker(plugin_dir: Callable[..., Path]) -> dict[str, Any]:
    return {
        "plugins": {"linker": {}},
        "config": {"bot": {"plugin_dirs": [str(plugin_dir(linker=LINKER))]}},
        "admins": {"console": ["boss"]},
    }


async def test_refusals_name_the_plugins_own_link_command(bot_harness: Any, linker: Any) -> None:
    async with bot_harness(**linker) as bot:
        chat = bot.chat()
        hint = "You need to link your linker account first: !acct link <account>"
        assert await chat.say("!mine", user="u1") == [hint]
        assert await chat.say("!spend", user="u1") == [hint]
        assert await chat.say("!acct link x1", user="u1") == ["pending"]
        assert await chat.say("!mine", user="u1") == ["account x1"]
        (refusal,) = await chat.say("!spend", user="u1")
        assert refusal.startswith("Your linker link to x1 is waiting for an admin's approval")
        bot.approve_link("u1", "linker")
        assert await chat.say("!spend", user="u1") == ["spent from x1"]


def test_link_approval_takes_admins_or_none(tmp_path: Path) -> None:
    from bot.config import PluginConfig, load_config
    from bot.errors import ConfigError

    path = tmp_path / "bot.yaml"
    path.write_text("plugins:\n  deepbot:\n    simulate: true\n    link_approval: everyone\n")
    loaded = load_config(path, env={})
    with pytest.raises(ConfigError) as caught:
        loaded.validate_plugin("deepbot", PluginConfig)
    assert str(caught.value) == (
        "bot.yaml:4: plugins.deepbot.link_approval: Input should be 'admins' or 'none'"
    )
    assert PluginConfig().link_approval == "admins"


async def test_claims_per_hour_are_bounded_across_restarts(
    bot_harness: Any, tmp_path: Path
) -> None:
    """Each claim alerts the admins: trying name after name is cut off, also after a restart."""
    directory = tmp_path / "db"
    directory.mkdir()
    names = ["alice", "bob", "carol", "expertsonline"]
    async with bot_harness(**deepbot(), directory=directory) as bot:
        chat = bot.chat()
        for name in names:
            (reply,) = await chat.say(f"!link deepbot {name}", user="u1")
            assert reply.startswith("You claimed"), reply
    async with bot_harness(**deepbot(), directory=directory) as bot:
        chat = bot.chat()
        (fifth,) = await chat.say("!link deepbot alice", user="u1")
        assert "(claim #5)" in fifth
        assert await chat.say("!link deepbot bob", user="u1") == [
            "You made 5 link claims in the last hour, as many as admins are asked to look at; "
            "try again later."
        ]
        link = bot.bot.store.get_link("console", "u1", "deepbot")
        assert link is not None and link.account == "alice"  # the refused claim changed nothing
        (again,) = await chat.say("!link deepbot alice", user="u1")  # the same claim: no new one
        assert "(claim #5)" in again
        assert await chat.say("!link deepbot bob", user="u2") == [
            "You claimed DeepBot user bob. An admin has to approve it (claim #6) before commands "
            "that act on the account work; you will be told here. Check with !links. Try !points."
        ]


async def test_admins_remove_a_disputed_link(bot_harness: Any) -> None:
    """ "Already linked to another chat user; ask an admin": the admin can free the account."""
    async with bot_harness(**deepbot()) as bot:
        chat = bot.chat()
        await chat.say("!link deepbot alice", user="squatter")
        bot.approve_link("squatter", "deepbot")
        (taken,) = await chat.say("!link deepbot alice", user="owner")
        assert taken.startswith("alice is already linked to another chat user")
        assert await chat.say("!links remove deepbot alice", user="owner") == [
            "This command is for admins only."
        ]
        assert await chat.say("!links remove deepbot ALICE", user="boss") == [
            "Removed the deepbot link to alice of console:squatter (approved)."
        ]
        assert ("boss", "links remove", "removed") in audit(bot)
        assert bot.bot.store.get_link("console", "squatter", "deepbot") is None
        assert (await chat.say("!link deepbot alice", user="owner"))[0].startswith("You claimed")
        assert await chat.say("!links remove deepbot nobody", user="boss") == [
            "Nobody links deepbot account nobody."
        ]
