"""The actions real bots use beyond the v0.5 document (issue 15): guildInfo,
requestBasicInfo, requestGearInfo, viewCraftbook and wantToBuy, in the client and the
simulator with the shapes the public clients read, and the chat commands on top. Also the
reply fields the real service adds (``action``, ``transactionId``, profile extras), which
the client must read and must not need."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bot_plugins.chatwars.client import ChatWarsClient
from bot_plugins.chatwars.errors import Forbidden, InsufficientFunds, NoOffersFoundByPrice
from bot_plugins.chatwars.models import UserToken
from bot_plugins.chatwars.simulator import ChatWarsSimulator

# --------------------------------------------------------------------------- client


async def test_basic_info_gear_guild_and_craftbook(
    chatwars_client: ChatWarsClient, chatwars_sim: ChatWarsSimulator, link_user: Any
) -> None:
    world = chatwars_sim.world
    world.add_user(
        7001, character_class="⚒", atk=78, defense=145, guild="No Correlation", guild_emoji="🐉"
    )
    user = await link_user(7001)

    basic = await chatwars_client.request_basic_info(user)  # needs no operation
    assert (basic.character_class, basic.attack, basic.defense) == ("⚒", 78, 145)

    with pytest.raises(Forbidden) as refused:
        await chatwars_client.request_gear_info(user)
    assert refused.value.required_operation == "GetGearInfo"
    world.grant_operation(7001, "GetGearInfo")
    gear = await chatwars_client.request_gear_info(user)
    assert gear.slots["weapon"].name == "Hunter Bow" and gear.slots["weapon"].attack == 21
    assert gear.slots["weapon"].quality == "C" and gear.ammo == {"arrows": 120}

    with pytest.raises(Forbidden) as refused:
        await chatwars_client.guild_info(user)
    assert refused.value.required_operation == "GuildStock"
    world.grant_operation(7001, "GuildStock")
    guild = await chatwars_client.guild_info(user)
    assert (guild.tag, guild.name) == ("NC", "No Correlation")
    assert guild.stock_size == sum(guild.stock.values()) and guild.stock_limit == 20_000

    world.grant_operation(7001, "ViewCraftbook")
    book = await chatwars_client.view_craftbook(user)
    assert [r.name for r in book.craft] == ["Steel boots", "Hunter Armor"]
    assert book.alchemy[0].price == 15

    profile = await _profile(chatwars_client, world, user)
    assert (profile.guild_tag, profile.hp, profile.max_hp) == ("NC", 1200, 1200)
    assert profile.guild_emoji == "🐉"  # Cactiw's bot reads it
    assert "guild_tag" not in profile.extra and "guild_emoji" not in profile.extra


async def _profile(client: ChatWarsClient, world: Any, user: UserToken) -> Any:
    world.grant_operation(user.user_id, "GetUserProfile")
    return await client.request_profile(user)


async def test_gear_as_the_go_client_reads_it_bare_names(
    chatwars_client: ChatWarsClient, chatwars_sim: ChatWarsSimulator, link_user: Any
) -> None:
    user = await link_user(7002, "GetGearInfo")
    await chatwars_sim.publish_raw_reply(b"")  # a malformed reply first: dropped
    world = chatwars_sim.world
    world.inject("Ok", action="requestGearInfo", payload={"gear": {"head": "Hunter Helmet"}})
    # An injected result carries only the given payload (plus userId): the Go shape.
    gear = await chatwars_client.request_gear_info(user)
    assert gear.slots["head"].name == "Hunter Helmet" and gear.slots["head"].attack is None


async def test_want_to_buy_spends_gold_once_and_reads_both_reply_shapes(
    chatwars_client: ChatWarsClient, chatwars_sim: ChatWarsSimulator, link_user: Any
) -> None:
    world = chatwars_sim.world
    world.add_user(7003, gold=100, level=30, stock={})
    user = await link_user(7003, "TradeTerminal")
    price = world.market["08"]
    placed = await chatwars_client.want_to_buy(user, "08", 5, price + 2, "tx-buy-1")
    assert (placed.item, placed.quantity) == ("Iron ore", 5)
    assert world.users[7003].gold == 100 - 5 * price
    assert world.users[7003].stock == {"Iron ore": 5}
    assert world.purchases == [(7003, "08", 5, 5 * price)]
    sent = next(r for r in world.requests if r["action"] == "wantToBuy")
    assert sent["payload"] == {
        "itemCode": "08",
        "quantity": 5,
        "price": price + 2,
        "exactPrice": False,
    }
    with pytest.raises(NoOffersFoundByPrice):
        await chatwars_client.want_to_buy(user, "08", 1, price - 1, "tx-buy-2")
    with pytest.raises(InsufficientFunds):
        await chatwars_client.want_to_buy(user, "08", 1000, price, "tx-buy-3")
    assert len(world.purchases) == 1


async def test_the_client_needs_neither_action_nor_transaction_id_in_replies(
    chatwars_client: ChatWarsClient, chatwars_sim: ChatWarsSimulator, link_user: Any
) -> None:
    world = chatwars_sim.world
    world.document_shapes = True  # replies exactly as the document shows them
    user = await link_user(7004)
    asked = await chatwars_client.auth_additional_operation(user, "GetStock")
    raw = [r for r in world.requests if r.get("action") == "authAdditionalOperation"]
    assert len(raw) == 1
    await chatwars_client.grant_additional_operation(
        user, asked.request_id, world.last_code(7004, "operation")
    )
    assert (await chatwars_client.request_stock(user)).items
    authorized = await chatwars_client.authorize_payment(user, 1, "tx-doc-1")
    paid = await chatwars_client.pay(user, 1, world.last_code(7004, "payment"), "tx-doc-1")
    assert authorized.transaction_id == paid.transaction_id == "tx-doc-1"


# --------------------------------------------------------------------------- commands


async def test_cw_guild_gear_and_craftbook_from_chat(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator, chatwars_link: Any
) -> None:
    world = chatwars_sim.world
    world.add_user(7101, guild="No Correlation", castle="🦌", guild_tag="NC")
    async with chatwars_bot() as bot:
        chatwars_link(bot, "u1", 7101)
        chat = bot.chat(kind="private")
        [question] = await chat.say("!cw guild", user="u1")
        assert question.startswith("The bot needs your permission to read your guild and its")
        [guild] = await chat.say(world.last_code(7101, "operation"), user="u1")
        head = guild.splitlines()[0]
        assert head.startswith("🦌[NC] No Correlation: level 12, 🎖3,400 glory, 18 members")

        world.grant_operation(7101, "GetGearInfo")
        [gear] = await chat.say("!cw gear", user="u1")
        assert gear.splitlines()[:2] == [
            "Your gear:",
            "weapon: Hunter Bow (⚔21, quality C, reinforced)",
        ]
        assert gear.splitlines()[-1] == "Ammo: arrows 120"

        world.grant_operation(7101, "ViewCraftbook")
        [book] = await chat.say("!cw craftbook", user="u1")
        assert book == (
            "Alchemy (1): Vial of Rage (15 gold)\n"
            "Craft (2): Steel boots (30 gold), Hunter Armor (80 gold)"
        )

        # API text is clipped in replies: a 100 KB guild name does not reach the chat whole.
        world.guilds["No Correlation"].name = "N" * 100_000
        [long] = await chat.say("!cw guild", user="u1")
        assert len(long.splitlines()[0]) < 200 and "…" in long


async def test_cw_buy_confirms_then_spends_once_and_writes_the_ledger(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator, chatwars_link: Any
) -> None:
    world = chatwars_sim.world
    world.add_user(7102, gold=200, level=20, stock={})
    price = world.market["08"]
    async with chatwars_bot() as bot:
        chatwars_link(bot, "u1", 7102, "TradeTerminal")
        chat = bot.chat(kind="private")
        [question, no] = await chat.say("!cw buy iron ore 10 9", user="u1", confirm=False)
        assert question == (
            "Place a buy order on the ChatWars exchange for 10 Iron ore (08) at 9 gold each "
            "or less, spending at most 90 gold of your gold?"
        )
        assert no == "Cancelled; no order was placed."
        assert not [r for r in world.requests if r["action"] == "wantToBuy"]
        assert bot.bot.store.ledger_entries("chatwars") == []

        [_, placed] = await chat.say("!cw buy iron ore 10 9", user="u1", confirm=True)
        [entry] = bot.bot.store.ledger_entries("chatwars")
        assert placed == (
            "Your buy order for 10 Iron ore at 9 gold each or less is placed on the exchange. "
            f"(ledger {entry.transaction_id[:8]})"
        )
        assert (entry.kind, entry.status, entry.amount) == ("buy", "done", 90)
        assert entry.message == "10 x Iron ore (08) at most 9 gold each"
        assert world.users[7102].gold == 200 - 10 * price
        assert world.purchases == [(7102, "08", 10, 10 * price)]
        [listed] = await chat.say("!cw ledger", user="boss", admin=True)
        assert listed.splitlines()[1].endswith(
            "buy by Telegram 7102: 10 x Iron ore (08) at most 9 gold each (at most 90 gold): done"
        )

        [_, cheap] = await chat.say("!cw buy 08 1 1", user="u1", confirm=True)
        assert cheap == "ChatWars found no offers at that price."
        assert bot.bot.store.ledger_entries("chatwars", status="failed")[0].result == (
            "NoOffersFoundByPrice"
        )
        # Bad input is refused before the question (each by its own user: cw buy has a
        # per-user cool-down).
        for n, (bad, said) in enumerate(
            (
                ("!cw buy iron ore", "Usage: !cw buy <item> <quantity> <max price>"),
                ("!cw buy unobtainium 1 1", "I do not know the item 'unobtainium'"),
                ("!cw buy iron ore 0 5", "The quantity must be a whole number from 1 to 10,000."),
                ("!cw buy iron ore 1,000 5", "Usage: !cw buy"),
            )
        ):
            # One chat user per account: each gets a player of their own.
            world.add_user(7150 + n, gold=200, level=20, stock={})
            chatwars_link(bot, f"bad{n}", 7150 + n, "TradeTerminal")
            [reply] = await chat.say(bad, user=f"bad{n}", confirm=True)
            assert reply.startswith(said), reply
        assert len(world.purchases) == 1


async def test_cw_buy_whose_reply_is_lost_is_never_resent_and_a_late_reply_settles_it(
    chatwars_bot: Callable[..., Any], chatwars_sim: ChatWarsSimulator, chatwars_link: Any
) -> None:
    world = chatwars_sim.world
    world.add_user(7103, gold=500, level=20)
    async with chatwars_bot(timeout=0.3) as bot:
        chatwars_link(bot, "u1", 7103, "TradeTerminal")
        chat = bot.chat(kind="private")
        chatwars_sim.hold_replies()
        [_, reply] = await chat.say("!cw buy coal 3 20", user="u1", confirm=True)
        assert reply.startswith("ChatWars did not answer in time, so the order may or may not")
        [entry] = bot.bot.store.ledger_entries("chatwars")
        assert (entry.status, entry.result) == ("unknown", "Timeout")
        chatwars_sim.release_replies()
        store = bot.bot.store
        await chatwars_sim.wait_until(
            lambda: store.ledger_get(entry.transaction_id).status == "done", 5
        )
        assert len([r for r in world.requests if r["action"] == "wantToBuy"]) == 1
        assert len(world.purchases) == 1
