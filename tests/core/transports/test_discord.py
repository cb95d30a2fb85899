"""The Discord transport end to end: the real discord.py against the fake Discord on 127.0.0.1.

Every test drives the whole bot (config, plugin, dispatcher, store, alert router) and observes
only what reaches the fake over real sockets: messages, interaction callbacks, follow-ups and
command registrations.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from discord_support import (
    DEMO_PLUGIN,
    MORE_PLUGIN,
    console_says,
    running_bot,
    wait_until,
)
from fake_discord import (
    CALLBACK_AUTOCOMPLETE,
    CALLBACK_DEFERRED_MESSAGE,
    CALLBACK_MESSAGE,
    CALLBACK_UPDATE_MESSAGE,
    FakeDiscord,
    FakeGuild,
    Sent,
)

from bot.config import config_from_dict
from bot.errors import ConfigError
from bot.transports.discord import discord
from bot.transports.discord.commands import BOOLEAN, INTEGER, NUMBER, STRING, SUB_COMMAND, USER

GUILD_ID = FakeGuild.sample().id


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(guilds=[FakeGuild.sample()]) as fake:
        yield fake
    assert not fake.errors, f"the fake itself failed: {fake.errors}"
    assert not fake.unhandled, f"requests the fake does not know: {fake.unhandled}"


def registered(fake: FakeDiscord, guild_id: int | None = GUILD_ID) -> dict[str, dict]:
    return {c["name"]: c for c in fake.commands(guild_id)}


async def test_prefix_and_slash_commands_run_the_same_declaration(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    guild = fake.guilds[0]
    general, alice, bob = guild.channel("general"), guild.member("alice"), guild.member("bob")
    async with running_bot(tmp_path, fake):
        await fake.inject_message(general.id, "!echo 2 hi 1.50 --loud", author=bob)
        typed = await fake.wait_for_message(general.id)
        assert typed.content == "HI HI (price 1.50) by bob"
        assert typed.payload["message_reference"]["fail_if_not_exists"] is False

        call = await fake.inject_command(
            "echo",
            {"n": 2, "word": "hi", "price": 1.5, "loud": True},
            user=bob,
            channel_id=general.id,
        )
        slash = await fake.wait_for_callback(call)
        assert slash.callback_type == CALLBACK_MESSAGE and not slash.ephemeral
        assert slash.content == "HI HI (price 1.5) by bob"

        echo = registered(fake)["echo"]
        assert [(o["name"], o["type"], o["required"]) for o in echo["options"]] == [
            ("n", INTEGER, True),
            ("word", STRING, True),
            ("price", NUMBER, False),
            ("loud", BOOLEAN, False),
        ]
        assert echo["description"] == "Repeat a word."
        assert echo["options"][0]["description"] == "how many times"
        assert echo["default_member_permissions"] is None

        # A user option and a choice, typed as a mention and picked in Discord's UI.
        greet = registered(fake)["greet"]
        assert greet["options"][0]["type"] == USER
        assert greet["options"][1]["choices"] == [
            {"name": "happy", "value": "happy"},
            {"name": "grumpy", "value": "grumpy"},
        ]
        await fake.inject_message(general.id, f"!greet <@{alice.id}> grumpy", author=bob)
        expected = f"grumpy hello to alice (discord:{alice.id})"
        assert (await fake.wait_for_message(general.id)).content == expected
        call = await fake.inject_command(
            "greet", {"who": alice, "mood": "grumpy"}, user=bob, channel_id=general.id
        )
        assert (await fake.wait_for_callback(call)).content == expected

        # Discord's own client validates types, but a tolerant transport re-checks them.
        odd = await fake.inject_interaction(
            2,
            {
                "id": echo["id"],
                "name": "echo",
                "type": 1,
                "options": [
                    {"name": "n", "type": INTEGER, "value": "two"},
                    {"name": "word", "type": STRING, "value": "hi"},
                ],
            },
            user=bob,
            channel_id=general.id,
        )
        refused = await fake.wait_for_callback(odd)
        assert refused.ephemeral
        assert refused.content.startswith("<n> must be a whole number, not 'two'")
        assert "Usage: !echo <n> <word> [price] [--loud]" in refused.content


async def test_questions_take_the_next_message_and_mentions_work_as_a_prefix(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    guild = fake.guilds[0]
    general, alice, bob = guild.channel("general"), guild.member("alice"), guild.member("bob")
    async with running_bot(tmp_path, fake):
        await fake.inject_message(general.id, "!name", author=bob)
        assert (await fake.wait_for_message(general.id)).content == "What is your name?"
        await fake.inject_message(general.id, "Robert", author=alice)  # someone else talks
        await fake.inject_message(general.id, "Bob", author=bob)
        assert (await fake.wait_for_message(general.id)).content == "Hello Bob"

        call = await fake.inject_command("name", user=bob, channel_id=general.id)
        assert (await fake.wait_for_callback(call)).content == "What is your name?"
        await fake.inject_message(general.id, "Bobby", author=bob)
        assert (await fake.wait_for_followup(call, kinds=("followup",))).content == "Hello Bobby"

        await fake.inject_message(general.id, f"<@{fake.bot_user.id}> echo 1 hey", author=bob)
        assert (await fake.wait_for_message(general.id)).content == "hey by bob"


async def test_groups_and_admin_commands(fake: FakeDiscord, tmp_path: Path) -> None:
    guild = fake.guilds[0]
    general, alice, bob = guild.channel("general"), guild.member("alice"), guild.member("bob")
    async with running_bot(tmp_path, fake) as (bot, _):
        commands = registered(fake)
        # Admin-only commands are hidden from members without Manage Server.
        assert commands["payout"]["default_member_permissions"] == "32"
        assert commands["announce"]["default_member_permissions"] == "32"
        # A group that is also a command: its own command becomes /points show.
        points = commands["points"]
        assert points["default_member_permissions"] is None  # mixed: visible, checked at run
        assert [(o["name"], o["type"]) for o in points["options"]] == [
            ("show", SUB_COMMAND),
            ("add", SUB_COMMAND),
        ]
        # The core's own group: plugins [name] beside plugins enable/disable/reload.
        assert commands["plugins"]["default_member_permissions"] == "32"

        with pytest.raises(PermissionError, match="bob cannot see /payout"):
            await fake.inject_command(
                "payout", {"user": "x", "amount": 1}, user=bob, channel_id=general.id
            )
        # A server owner can grant the command to bob; the bot still refuses him.
        forced = await fake.inject_command(
            "payout", {"user": "x", "amount": 1}, user=bob, channel_id=general.id, force=True
        )
        refusal = await fake.wait_for_callback(forced)
        assert refusal.ephemeral and refusal.content == "This command is for admins only."

        call = await fake.inject_command("points show", user=bob, channel_id=general.id)
        assert (await fake.wait_for_callback(call)).content == "bob has 10 points"
        call = await fake.inject_command(
            "points add", {"user": "carol", "n": 5}, user=bob, channel_id=general.id
        )
        refused = await fake.wait_for_callback(call)
        assert refused.ephemeral and refused.content == "This command is for admins only."
        call = await fake.inject_command(
            "points add", {"user": "carol", "n": 5}, user=alice, channel_id=general.id
        )
        assert (await fake.wait_for_callback(call)).content == "gave 5 points to carol"

        await fake.inject_message(general.id, "!points add carol 5", author=bob)
        assert (await fake.wait_for_message(general.id)).content == (
            "This command is for admins only."
        )
        audit = list(bot.store.db["audit"].rows)
        assert any(r["user_id"] == str(alice.id) and r["command"] == "points add" for r in audit)


async def test_long_replies_are_split_at_2000(fake: FakeDiscord, tmp_path: Path) -> None:
    guild = fake.guilds[0]
    general, bob = guild.channel("general"), guild.member("bob")
    expected = [f"line {i:03d} " + "x" * 60 for i in range(70)]
    async with running_bot(tmp_path, fake):
        await fake.inject_message(general.id, "!long", author=bob)
        parts = [await fake.wait_for_message(general.id) for _ in range(3)]
        assert all(0 < len(p.content) <= 2000 for p in parts)
        assert "\n".join(p.content for p in parts).splitlines() == expected

        call = await fake.inject_command("long", user=bob, channel_id=general.id)
        first = await fake.wait_for_callback(call)
        rest = [await fake.wait_for_followup(call, kinds=("followup",)) for _ in range(2)]
        slash_parts = [first.content] + [r.content for r in rest]
        assert all(len(p) <= 2000 for p in slash_parts)
        assert "\n".join(slash_parts).splitlines() == expected


async def test_confirmation_buttons_and_their_expiry(fake: FakeDiscord, tmp_path: Path) -> None:
    guild = fake.guilds[0]
    general, alice, bob = guild.channel("general"), guild.member("alice"), guild.member("bob")
    async with running_bot(tmp_path, fake, confirm_timeout=0.5) as (_, transport):
        await fake.inject_message(general.id, "!payout bob 5", author=alice)
        question = await fake.wait_for_message(general.id)
        assert question.content == "Pay 5 to bob?"
        yes, no = question.custom_ids
        assert yes.endswith(":yes") and no.endswith(":no")
        assert question.message_id is not None

        # Only the admin who asked may answer.
        click = await fake.inject_component(question.message_id, yes, user=bob)
        other = await fake.wait_for_callback(click)
        assert other.callback_type == CALLBACK_MESSAGE and other.ephemeral
        assert "Only the person who ran the command" in other.content

        click = await fake.inject_component(question.message_id, yes, user=alice)
        answered = await fake.wait_for_callback(click)
        assert answered.callback_type == CALLBACK_UPDATE_MESSAGE
        assert answered.content == "Pay 5 to bob?\nConfirmed by alice."
        assert fake.message(question.message_id)["components"] == []
        assert (await fake.wait_for_message(general.id)).content == "Paid 5 to bob."

        # No click: the buttons expire, the message says so, and nothing is paid.
        await fake.inject_message(general.id, "!payout bob 6", author=alice)
        question = await fake.wait_for_message(general.id)
        assert question.message_id is not None
        assert (await fake.wait_for_message(general.id, timeout=3)).content == ("Payout cancelled.")
        expired = fake.message(question.message_id)
        assert "No answer in time" in expired["content"] and expired["components"] == []
        assert len(transport.confirms) == 0
        # A click that was already on its way (or on a question from before a restart) is
        # still answered, not left to fail.
        late = await fake.inject_interaction(
            3,
            {"custom_id": question.custom_ids[0], "component_type": 2},
            user=alice,
            channel_id=general.id,
            message=fake.message(question.message_id),
        )
        stale = await fake.wait_for_callback(late)
        assert stale.callback_type == CALLBACK_UPDATE_MESSAGE
        assert "This question has expired." in stale.content

        # The same confirmation from a slash command: an ephemeral question for the caller.
        call = await fake.inject_command(
            "payout", {"user": "bob", "amount": 7}, user=alice, channel_id=general.id
        )
        asked = await fake.wait_for_callback(call)
        assert asked.ephemeral and asked.content == "Pay 7 to bob?"
        assert asked.message_id is not None
        click = await fake.inject_component(asked.message_id, asked.custom_ids[1], user=alice)
        assert (await fake.wait_for_callback(click)).content == (
            "Pay 7 to bob?\nCancelled by alice."
        )
        after = await fake.wait_for_followup(call, kinds=("followup",))
        assert after.content == "Payout cancelled."


async def test_errors_and_private_replies_stay_private(fake: FakeDiscord, tmp_path: Path) -> None:
    guild = fake.guilds[0]
    general, bob = guild.channel("general"), guild.member("bob")
    async with running_bot(tmp_path, fake):
        for name, text in (
            ("boom", "That cannot be done right now."),
            ("secret", "your balance is 42"),
        ):
            call = await fake.inject_command(name, user=bob, channel_id=general.id)
            answer = await fake.wait_for_callback(call)
            assert answer.ephemeral and answer.content == text

        # Typed in a channel: private data goes to the user's DMs, errors stay in the channel.
        await fake.inject_message(general.id, "!secret", author=bob)
        dm = fake.dm_channel(bob)
        assert (await fake.wait_for_message(dm.id)).content == "your balance is 42"
        await fake.inject_message(general.id, "!boom", author=bob)
        assert (await fake.wait_for_message(general.id)).content == (
            "That cannot be done right now."
        )
        await fake.inject_message(general.id, "!nosuch", author=bob)
        assert (await fake.wait_for_message(general.id)).content.startswith(
            "Unknown command !nosuch."
        )
        posted = [s for s in fake.sent if s.kind == "message" and s.channel_id == general.id]
        assert all("balance" not in s.content for s in posted)


async def test_slow_slash_command_is_deferred_then_answered(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    guild = fake.guilds[0]
    general, bob = guild.channel("general"), guild.member("bob")
    async with running_bot(tmp_path, fake, defer_after=0.1):
        call = await fake.inject_command("slow", user=bob, channel_id=general.id)
        deferred = await fake.wait_for_callback(call)
        assert deferred.callback_type == CALLBACK_DEFERRED_MESSAGE and not deferred.ephemeral
        done = await fake.wait_for_followup(call, kinds=("edit_original",))
        assert done.content == "finally done"

        # An error after a public "thinking…" is not shown publicly: it replaces the placeholder.
        call = await fake.inject_command("slow", {"fail": True}, user=bob, channel_id=general.id)
        assert not (await fake.wait_for_callback(call)).ephemeral
        await fake.wait_for_followup(call, kinds=("delete_original",))
        error = await fake.wait_for_followup(call, kinds=("followup",))
        assert error.ephemeral and error.content == "It failed, slowly."


async def test_autocomplete_offers_the_plugins_suggestions(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    guild = fake.guilds[0]
    general, bob = guild.channel("general"), guild.member("bob")
    async with running_bot(tmp_path, fake):
        assert registered(fake)["fruit"]["options"][0]["autocomplete"] is True
        typing = await fake.inject_autocomplete(
            "fruit", {"name": "ap"}, focused="name", user=bob, channel_id=general.id
        )
        choices = await fake.wait_for_callback(typing)
        assert choices.callback_type == CALLBACK_AUTOCOMPLETE
        assert [c["value"] for c in choices.payload["data"]["choices"]] == ["apple", "apricot"]

        # Too many choices for Discord's list: they are suggested while typing, and checked.
        typing = await fake.inject_autocomplete(
            "paint", {"shade": "shade1"}, focused="shade", user=bob, channel_id=general.id
        )
        offered = (await fake.wait_for_callback(typing)).payload["data"]["choices"]
        assert [c["value"] for c in offered] == [f"shade{i}" for i in range(10, 20)]
        call = await fake.inject_command(
            "paint", {"shade": "shade07"}, user=bob, channel_id=general.id
        )
        assert (await fake.wait_for_callback(call)).content == "painted shade07"
        call = await fake.inject_command("paint", {"shade": "red"}, user=bob, channel_id=general.id)
        refused = await fake.wait_for_callback(call)
        assert refused.ephemeral and refused.content.startswith("<shade> must be one of shade00")


async def test_no_suggestions_for_a_command_the_caller_may_not_run_here(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    """Suggestions can show what a command manages: none where it is switched off."""
    guild = fake.guilds[0]
    general, bob = guild.channel("general"), guild.member("bob")
    async with running_bot(tmp_path, fake) as (bot, _):

        async def offered() -> list[str]:
            typing = await fake.inject_autocomplete(
                "fruit", {"name": "ap"}, focused="name", user=bob, channel_id=general.id
            )
            answer = await fake.wait_for_callback(typing)
            return [c["value"] for c in answer.payload["data"]["choices"]]

        bot.access.set_chat_control("discord", str(general.id), "demo", "fruit", False)
        assert await offered() == []
        bot.access.set_chat_control("discord", str(general.id), "demo", "fruit", True)
        assert await offered() == ["apple", "apricot"]


async def test_alert_reaches_a_subscribed_channel(fake: FakeDiscord, tmp_path: Path) -> None:
    guild = fake.guilds[0]
    general, alerts = guild.channel("general"), guild.channel("alerts")
    alice, bob = guild.member("alice"), guild.member("bob")
    async with running_bot(tmp_path, fake) as (bot, transport):
        await fake.inject_message(alerts.id, "!news on", author=bob)
        assert (await fake.wait_for_message(alerts.id)).content == (
            "This chat now receives demo.news alerts."
        )
        await fake.inject_message(general.id, "!announce Big sale <@&1> @everyone", author=alice)
        assert (await fake.wait_for_message(general.id)).content == "published to 1 chats"
        alert = await fake.wait_for_message(alerts.id)
        assert alert.content == "Big sale <@&1> @everyone"
        # Alert text is quoted from outside: it may not ping a role or everyone.
        assert alert.payload["allowed_mentions"]["parse"] == ["users"]

        with pytest.raises(Exception, match="not a Discord channel id"):
            await transport.send("general", "x")
        assert bot.alerts.delivered[-1].chat_id == str(alerts.id)


async def test_slash_commands_sync_only_when_they_change(fake: FakeDiscord, tmp_path: Path) -> None:
    def puts() -> list[Sent]:
        return [s for s in fake.sent if s.kind == "commands"]

    async with running_bot(tmp_path, fake) as (_, transport):
        assert transport.syncs == 1
        assert [p.guild_id for p in puts()] == [GUILD_ID]
        first = {c["name"] for c in fake.commands(GUILD_ID)}
        assert {"echo", "points", "payout", "help", "status"} <= first

    async with running_bot(tmp_path, fake) as (_, transport):
        assert transport.syncs == 0  # same commands, same hash in the database
    assert len(puts()) == 1

    async with running_bot(tmp_path, fake, plugins={"demo": DEMO_PLUGIN, "more": MORE_PLUGIN}) as (
        _,
        transport,
    ):
        assert transport.syncs == 1
    assert {c["name"] for c in fake.commands(GUILD_ID)} == first | {"added"}

    # Disabling a plugin while the bot runs updates the registration.
    async with running_bot(
        tmp_path,
        fake,
        plugins={"demo": DEMO_PLUGIN, "more": MORE_PLUGIN},
        command_check_interval=0.05,
    ) as (_, transport):
        alice, general = fake.guilds[0].member("alice"), fake.guilds[0].channel("general")
        await fake.inject_message(general.id, "!plugins disable more", author=alice)
        await fake.wait_for_message(general.id)
        assert {c["name"] for c in await fake.wait_for_commands(GUILD_ID)} == first

    # Moving from guild to global registration clears the guild's copy.
    async with running_bot(tmp_path, fake, guild_ids=[]) as (_, transport):
        assert transport.syncs == 2
    assert fake.commands(GUILD_ID) == []
    assert {c["name"] for c in fake.commands()} == first


async def test_gateway_down_leaves_the_bot_running_and_recovers(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    guild = fake.guilds[0]
    general, bob = guild.channel("general"), guild.member("bob")
    await fake.set_gateway_fault("refuse")
    async with running_bot(tmp_path, fake, wait_up=False) as (bot, transport):
        await wait_until(lambda: transport.state == "reconnecting", what="reconnecting")
        _, reason = transport.status()
        assert reason.startswith("cannot connect to Discord's gateway: cannot connect to 127.0.0.1")
        assert "retrying in" in reason
        # The rest of the bot answers meanwhile, and status names the problem.
        status = await console_says(bot, "!status")
        assert "transport discord: reconnecting - cannot connect to Discord's gateway" in status[0]

        await fake.set_gateway_fault(None)
        await wait_until(lambda: transport.state == "up", what="reconnected")
        await fake.inject_message(general.id, "!echo 1 back", author=bob)
        assert (await fake.wait_for_message(general.id)).content == "back by bob"

        # A live session that drops is resumed by discord.py, without a new IDENTIFY.
        identifies = len(fake.identifies)
        await fake.disconnect_sessions(4000)
        await fake.wait_for_sessions(1)
        await wait_until(lambda: transport.state == "up", what="resumed")
        await fake.inject_message(general.id, "!echo 1 again", author=bob)
        assert (await fake.wait_for_message(general.id)).content == "again by bob"
        assert len(fake.identifies) == identifies


async def test_refused_token_fails_without_leaking_it(fake: FakeDiscord, tmp_path: Path) -> None:
    secret = "not-the-real-token-0123456789"
    async with running_bot(tmp_path, fake, wait_up=False, token=secret) as (bot, transport):
        await wait_until(lambda: transport.state == "failed", what="failed")
        _, reason = transport.status()
        assert reason == "Discord refused the bot token (check transports.discord.token)"
        assert secret not in reason
        assert await console_says(bot, "!echo 1 fine") == ["fine by console"]
    assert transport.status() == ("failed", reason)


async def test_without_the_message_content_intent(tmp_path: Path) -> None:
    async with FakeDiscord(guilds=[FakeGuild.sample()], allowed_privileged_intents=0) as fake:
        guild = fake.guilds[0]
        general, bob = guild.channel("general"), guild.member("bob")
        async with running_bot(tmp_path, fake, wait_up=False) as (_, transport):
            await wait_until(lambda: transport.state == "failed", what="failed")
            assert "message content intent is not enabled" in transport.status()[1]

        async with running_bot(tmp_path, fake, prefix_commands=False):
            call = await fake.inject_command(
                "echo", {"n": 1, "word": "hi"}, user=bob, channel_id=general.id
            )
            assert (await fake.wait_for_callback(call)).content == "hi by bob"
            # Discord blanks the text of ordinary messages, but not of ones that mention the bot.
            await fake.inject_message(general.id, "!echo 1 unseen", author=bob)
            await fake.inject_message(general.id, f"<@{fake.bot_user.id}> echo 1 seen", author=bob)
            assert (await fake.wait_for_message(general.id)).content == "seen by bob"
        assert not fake.errors


async def test_missing_token_is_reported_not_raised(fake: FakeDiscord, tmp_path: Path) -> None:
    async with running_bot(tmp_path, fake, wait_up=False, token=None) as (_, transport):
        assert transport.status() == ("failed", "transports.discord.token is not set")


async def test_auto_sharded_client_serves_both_shards(tmp_path: Path) -> None:
    first = FakeGuild.sample(1_100_000_000_000_000_000, "Shard zero")
    second = FakeGuild.sample(first.id + (1 << 22), "Shard one")
    async with FakeDiscord(guilds=[first, second]) as fake:
        async with running_bot(
            tmp_path, fake, shard_count=2, shard_identify_delay=0, guild_ids=[first.id]
        ):
            assert sorted(s.shard_id for s in fake.sessions) == [0, 1]
            for g in (first, second):
                channel = g.channel("general")
                await fake.inject_message(channel.id, "!echo 1 sharded", author=g.member("bob"))
                assert (await fake.wait_for_message(channel.id)).content == "sharded by bob"
        assert not fake.errors


async def test_endpoints_are_restored_after_stop(fake: FakeDiscord, tmp_path: Path) -> None:
    base = discord.http.Route.BASE
    gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    async with running_bot(tmp_path, fake):
        assert discord.http.Route.BASE == fake.api_base
        assert str(discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY) == fake.gateway_url
    assert discord.http.Route.BASE == base
    assert discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY == gateway


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"shard_ids": [0]}, "shard_ids needs shard_count"),
        ({"shard_count": 2, "shard_ids": [2]}, "shard_ids must be distinct numbers from 0 to 1"),
        ({"api_base": "discord.com/api"}, "transports.discord.api_base: must be an http"),
        ({"gateway_url": "http://x/"}, "transports.discord.gateway_url: must be a ws"),
        ({"defer_after": 5}, "transports.discord.defer_after"),
        ({"intents": 1}, "transports.discord.intents: unknown key"),
    ],
)
def test_bad_discord_config_is_refused_with_its_path(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"transports": {"discord": {"token": "abcdefgh", **settings}}})
