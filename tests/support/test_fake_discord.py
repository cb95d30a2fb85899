"""The fake Discord proven against the real discord.py: if these pass, the library accepts it.

Each test runs the unmodified library over real sockets; the raw-protocol tests at the end pin
the gateway behaviours a transport must cope with (close codes, blanked content).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands
from fake_discord import (
    CALLBACK_AUTOCOMPLETE,
    CALLBACK_MESSAGE,
    CALLBACK_UPDATE_MESSAGE,
    INTENT_GUILD_MESSAGES,
    INTENT_GUILDS,
    INTENT_MESSAGE_CONTENT,
    PERM_MANAGE_GUILD,
    FakeDiscord,
    FakeGuild,
    FakeUser,
    discord_py_pointed_at,
    new_snowflake,
    simulator_from_args,
)

GUILD = FakeGuild.sample().id


def _intents() -> discord.Intents:
    intents = discord.Intents.default()
    intents.message_content = True
    return intents


@contextlib.asynccontextmanager
async def running(client: discord.Client, fake: FakeDiscord) -> AsyncIterator[discord.Client]:
    """Run ``client`` against ``fake`` for the block; start-up or run errors fail the test."""
    with discord_py_pointed_at(fake.api_base, fake.gateway_url):
        task = asyncio.create_task(client.start(fake.token))
        ready = asyncio.create_task(client.wait_until_ready())
        try:
            done, _ = await asyncio.wait({task, ready}, timeout=10, return_when="FIRST_COMPLETED")
            assert done, "discord.py did not become ready within 10 s"
            if ready in done:
                yield client
        finally:
            ready.cancel()
            await client.close()
            (outcome,) = await asyncio.gather(task, return_exceptions=True)
        if isinstance(outcome, BaseException):
            raise outcome


class ConfirmView(discord.ui.View):
    @discord.ui.button(label="Confirm", custom_id="confirm", style=discord.ButtonStyle.green)
    async def confirm(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.edit_message(
            content=f"confirmed by {interaction.user}", view=None
        )


def _make_bot() -> commands.Bot:
    bot = commands.Bot(command_prefix="!", intents=_intents(), guild_ready_timeout=0.05)
    guild = discord.Object(GUILD)

    @bot.command()
    async def ping(ctx: commands.Context) -> None:
        await ctx.send(f"pong {ctx.author.name} roles={[r.name for r in ctx.author.roles[1:]]}")

    @bot.command()
    async def whoami(ctx: commands.Context) -> None:
        where = "dm" if ctx.guild is None else ctx.guild.name
        await ctx.send(f"{ctx.author.name} in {where}")

    @bot.command()
    async def ask(ctx: commands.Context) -> None:
        await ctx.send("Sure?", view=ConfirmView(timeout=30))

    admin = app_commands.Group(
        name="admin",
        description="Admin tools",
        default_permissions=discord.Permissions(manage_guild=True),
        guild_only=True,
    )
    points = app_commands.Group(name="points", description="Viewer points", parent=admin)

    @points.command(name="add", description="Give points")
    async def add(interaction: discord.Interaction, user: discord.Member, amount: int) -> None:
        await interaction.response.send_message(
            f"{user.display_name} +{amount} (caller manage_guild="
            f"{interaction.permissions.manage_guild})",
            ephemeral=True,
        )

    @app_commands.command(name="fruit", description="Pick a fruit")
    async def fruit(interaction: discord.Interaction, name: str) -> None:
        await interaction.response.send_message(f"you picked {name}")

    @fruit.autocomplete("name")
    async def fruit_names(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        names = ["apple", "apricot", "banana"]
        return [app_commands.Choice(name=n, value=n) for n in names if n.startswith(current)]

    @app_commands.command(name="slow", description="Deferred answer")
    async def slow(interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await interaction.followup.send("done later", ephemeral=True)

    bot.tree.add_command(admin, guild=guild)
    bot.tree.add_command(fruit, guild=guild)
    bot.tree.add_command(slow, guild=guild)

    async def setup_hook() -> None:
        await bot.tree.sync(guild=guild)

    bot.setup_hook = setup_hook  # type: ignore[method-assign]
    return bot


async def test_bot_replies_to_an_injected_message(fake_discord: FakeDiscord) -> None:
    guild = fake_discord.guilds[0]
    general, bob = guild.channel("general"), guild.member("bob")
    async with running(_make_bot(), fake_discord):
        (session,) = fake_discord.sessions
        assert session.has(INTENT_MESSAGE_CONTENT) and session.has(INTENT_GUILD_MESSAGES)
        assert "token" not in fake_discord.identifies[0]

        await fake_discord.inject_message(general.id, "!ping", author=bob)
        reply = await fake_discord.wait_for_message(general.id)
        assert reply.content == "pong bob roles=['Member']"

        # The echo of the bot's own reply must not have produced a second message.
        await fake_discord.inject_message(general.id, "!ping", author=guild.member("alice"))
        second = await fake_discord.wait_for_message(general.id)
        assert second.content.startswith("pong alice")
        assert [s.kind for s in fake_discord.sent].count("message") == 2

        dm = fake_discord.dm_channel(bob)
        await fake_discord.inject_message(dm.id, "!whoami", author=bob)
        assert (await fake_discord.wait_for_message(dm.id)).content == "bob in dm"


async def test_client_resumes_after_the_gateway_drops_it(fake_discord: FakeDiscord) -> None:
    guild = fake_discord.guilds[0]
    general = guild.channel("general")
    client = _make_bot()
    resumed = asyncio.Event()

    async def on_resumed() -> None:
        resumed.set()

    client.add_listener(on_resumed)
    async with running(client, fake_discord):
        (before,) = fake_discord.sessions
        await fake_discord.disconnect_sessions(4000)
        await asyncio.wait_for(resumed.wait(), 5)
        (after,) = await fake_discord.wait_for_sessions(1)
        assert after.session_id == before.session_id and len(fake_discord.identifies) == 1
        await fake_discord.inject_message(general.id, "!ping", author=guild.member("bob"))
        assert (await fake_discord.wait_for_message(general.id)).content.startswith("pong bob")


async def test_slash_commands_are_synced_and_answered(fake_discord: FakeDiscord) -> None:
    guild = fake_discord.guilds[0]
    general, alice, bob = guild.channel("general"), guild.member("alice"), guild.member("bob")
    async with running(_make_bot(), fake_discord):
        registered = {c["name"]: c for c in fake_discord.commands(GUILD)}
        assert set(registered) == {"admin", "fruit", "slow"}
        assert registered["admin"]["default_member_permissions"] == str(PERM_MANAGE_GUILD)
        assert registered["admin"]["guild_id"] == str(GUILD)
        assert registered["admin"]["options"][0]["options"][0]["name"] == "add"
        assert fake_discord.commands() == []

        call = await fake_discord.inject_command(
            "admin points add", {"user": bob, "amount": 5}, user=alice, channel_id=general.id
        )
        answer = await fake_discord.wait_for_callback(call)
        assert answer.callback_type == CALLBACK_MESSAGE
        assert answer.ephemeral
        assert answer.content == "bob +5 (caller manage_guild=True)"

        typing = await fake_discord.inject_autocomplete(
            "fruit", {"name": "ap"}, focused="name", user=bob, channel_id=general.id
        )
        choices = await fake_discord.wait_for_callback(typing)
        assert choices.callback_type == CALLBACK_AUTOCOMPLETE
        assert [c["value"] for c in choices.payload["data"]["choices"]] == ["apple", "apricot"]

        slow = await fake_discord.inject_command("slow", user=bob, channel_id=general.id)
        deferred = await fake_discord.wait_for_callback(slow)
        assert deferred.callback_type == 5 and deferred.ephemeral
        followup = await fake_discord.wait_for_followup(slow, kinds=("followup",))
        assert followup.content == "done later" and followup.ephemeral

        with pytest.raises(PermissionError, match="bob cannot see /admin"):
            await fake_discord.inject_command(
                "admin points add", {"user": bob, "amount": 1}, user=bob, channel_id=general.id
            )
        granted = await fake_discord.inject_command(
            "admin points add",
            {"user": alice, "amount": 1},
            user=bob,
            channel_id=general.id,
            force=True,
        )
        assert (await fake_discord.wait_for_callback(granted)).content.endswith("=False)")

        with pytest.raises(ValueError, match="required"):
            await fake_discord.inject_command(
                "admin points add", {"user": bob}, user=alice, channel_id=general.id
            )
        with pytest.raises(LookupError):
            await fake_discord.inject_command("nope", user=alice, channel_id=general.id)


async def test_button_click_reaches_the_view(fake_discord: FakeDiscord) -> None:
    guild = fake_discord.guilds[0]
    general, bob = guild.channel("general"), guild.member("bob")
    async with running(_make_bot(), fake_discord):
        await fake_discord.inject_message(general.id, "!ask", author=bob)
        question = await fake_discord.wait_for_message(general.id)
        assert question.custom_ids == ["confirm"]

        click = await fake_discord.inject_component(question.message_id or 0, "confirm", user=bob)
        update = await fake_discord.wait_for_callback(click)
        assert update.callback_type == CALLBACK_UPDATE_MESSAGE
        assert update.content == "confirmed by bob"
        assert fake_discord.message(question.message_id or 0)["components"] == []


async def test_rest_errors_and_rate_limits_reach_discord_py(fake_discord: FakeDiscord) -> None:
    general = fake_discord.guilds[0].channel("general")
    client = discord.Client(intents=_intents(), guild_ready_timeout=0.05)
    async with running(client, fake_discord):
        channel = client.get_channel(general.id)
        assert isinstance(channel, discord.TextChannel)
        with pytest.raises(discord.HTTPException) as too_long:
            await channel.send("x" * 2001)
        assert too_long.value.code == 50035 and "2000" in str(too_long.value)

        fake_discord.rate_limit_next(1, retry_after=0.1, path_contains="/messages")
        sent = await channel.send("after a 429")
        assert fake_discord.rate_limited == [f"POST /api/v10/channels/{general.id}/messages"]
        assert (await fake_discord.wait_for_message(general.id)).content == "after a 429"

        with pytest.raises(discord.NotFound):
            await client.http.send_message(new_snowflake(), params=_params("lost"))
        assert (await channel.fetch_message(sent.id)).content == "after a 429"
        await sent.edit(content="edited")
        edit = await fake_discord.wait_for(lambda s: s.kind == "edit")
        assert (edit.message_id, edit.content) == (sent.id, "edited")

        app_id = client.application_id
        hello = {"name": "hello", "description": "Say hi", "default_member_permissions": "0"}
        stored = await client.http.bulk_upsert_global_commands(app_id, [hello])  # type: ignore[arg-type]
        assert fake_discord.commands() == stored
        assert await fake_discord.wait_for_commands(None) == stored
        with pytest.raises(discord.HTTPException) as bad:
            await client.http.bulk_upsert_global_commands(
                app_id,  # type: ignore[arg-type]
                [{"name": "Hello", "description": "Capitals are refused"}],
            )
        assert bad.value.code == 50035
        assert fake_discord.commands() == stored


def _params(text: str) -> discord.http.MultipartParameters:
    return discord.http.handle_message_parameters(content=text)


async def test_auto_sharded_client_connects_two_shards() -> None:
    first = FakeGuild.sample(1_100_000_000_000_000_000, "Shard zero?")
    second = FakeGuild.sample(first.id + (1 << 22), "The other shard")
    assert (first.id >> 22) % 2 != (second.id >> 22) % 2

    class FastSharded(discord.AutoShardedClient):
        async def before_identify_hook(
            self, shard_id: int | None, *, initial: bool = False
        ) -> None:
            return None  # the real one sleeps 5 s between shards

    received: asyncio.Queue[discord.Message] = asyncio.Queue()
    client = FastSharded(intents=_intents(), shard_count=2, guild_ready_timeout=0.05)
    client.on_message = received.put  # type: ignore[attr-defined]

    async with FakeDiscord(guilds=[first, second]) as fake, running(client, fake):
        assert sorted((s.shard_id, s.shard_count) for s in fake.sessions) == [(0, 2), (1, 2)]
        assert {g.id for g in client.guilds} == {first.id, second.id}
        for g in (first, second):
            assert client.get_guild(g.id).shard_id == (g.id >> 22) % 2  # type: ignore[union-attr]
            await fake.inject_message(g.channel("general").id, "hi", author=g.member("bob"))
            message = await asyncio.wait_for(received.get(), 5)
            assert (message.guild and message.guild.id, message.content) == (g.id, "hi")


async def test_gateway_refusal_leaves_rest_working(fake_discord: FakeDiscord) -> None:
    headers = {"Authorization": f"Bot {fake_discord.token}"}
    for fault, error in (("refuse", OSError), ("error", aiohttp.WSServerHandshakeError)):
        await fake_discord.set_gateway_fault(fault)  # type: ignore[arg-type]
        client = discord.Client(intents=_intents())
        with discord_py_pointed_at(fake_discord.api_base, fake_discord.gateway_url):
            with pytest.raises(error):
                await asyncio.wait_for(client.start(fake_discord.token, reconnect=False), 5)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{fake_discord.api_base}/gateway/bot", headers=headers) as r:
                assert r.status == 200
                assert (await r.json())["url"] == fake_discord.gateway_url

    await fake_discord.set_gateway_fault(None)
    client = discord.Client(intents=_intents(), guild_ready_timeout=0.05)
    async with running(client, fake_discord):
        assert [g.id for g in client.guilds] == [GUILD]


async def test_wrong_token_is_refused_by_rest_and_gateway(fake_discord: FakeDiscord) -> None:
    client = discord.Client(intents=_intents())
    with discord_py_pointed_at(fake_discord.api_base, fake_discord.gateway_url):
        with pytest.raises(discord.LoginFailure):
            await client.start("not-the-token")
        await client.close()  # start() leaves its HTTP session open after a failed login
    async with aiohttp.ClientSession() as http, http.ws_connect(fake_discord.gateway_url) as ws:
        hello = await ws.receive_json()
        assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] > 0
        await ws.send_json({"op": 2, "d": {"token": "wrong", "intents": 1, "properties": {}}})
        await ws.receive()
        assert ws.close_code == 4004


async def _raw_session(
    http: aiohttp.ClientSession, fake: FakeDiscord, intents: int
) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(fake.gateway_url + "?v=10&encoding=json")
    assert (await ws.receive_json())["op"] == 10
    await ws.send_json({"op": 1, "d": None})
    assert (await ws.receive_json())["op"] == 11
    await ws.send_json(
        {"op": 2, "d": {"token": fake.token, "intents": intents, "properties": {"os": "x"}}}
    )
    return ws


async def test_message_content_needs_the_privileged_intent() -> None:
    guild = FakeGuild.sample()
    general, bob = guild.channel("general"), guild.member("bob")
    async with FakeDiscord(guilds=[guild]) as fake, aiohttp.ClientSession() as http:
        ws = await _raw_session(http, fake, INTENT_GUILDS | INTENT_GUILD_MESSAGES)
        events = [(await ws.receive_json())["t"] for _ in range(2)]
        assert events == ["READY", "GUILD_CREATE"]
        await fake.inject_message(general.id, "secret plan", author=bob)
        blank = await ws.receive_json()
        assert (blank["t"], blank["d"]["content"]) == ("MESSAGE_CREATE", "")
        await fake.inject_message(general.id, f"<@{fake.bot_user.id}> hello", author=bob)
        mention = await ws.receive_json()
        assert mention["d"]["content"].endswith("hello")
        assert mention["s"] == 4
        await ws.close()


async def test_disallowed_intent_and_bad_frames_close_with_discord_codes() -> None:
    async with FakeDiscord(allowed_privileged_intents=0) as fake, aiohttp.ClientSession() as http:
        ws = await _raw_session(http, fake, INTENT_GUILDS | INTENT_MESSAGE_CONTENT)
        await ws.receive()
        assert ws.close_code == 4014

        ws = await http.ws_connect(fake.gateway_url)
        await ws.receive_json()
        await ws.send_json({"op": 8, "d": {"guild_id": "1"}})
        await ws.receive()
        assert ws.close_code == 4003

        ws = await http.ws_connect(fake.gateway_url)
        await ws.receive_json()
        await ws.send_str("{not json")
        await ws.receive()
        assert ws.close_code == 4002


async def test_interaction_can_be_acknowledged_only_once(fake_discord: FakeDiscord) -> None:
    guild = fake_discord.guilds[0]
    stranger = FakeUser(new_snowflake(), "stranger")
    async with aiohttp.ClientSession() as http:
        ws = await _raw_session(http, fake_discord, INTENT_GUILDS)
        for _ in range(2):
            await ws.receive_json()
        call = await fake_discord.inject_interaction(
            2,
            {"id": "1", "name": "x", "type": 1},
            user=stranger,
            channel_id=guild.channel("general").id,
        )
        created = await ws.receive_json()
        assert created["t"] == "INTERACTION_CREATE"
        assert created["d"]["member"]["user"]["username"] == "stranger"
        url = f"{fake_discord.api_base}/interactions/{call.id}/{call.token}/callback"
        body = {"type": 4, "data": {"content": "hi", "flags": 64}}
        async with http.post(url, json=body) as first:
            assert first.status == 204
        async with http.post(url, json=body) as second:
            assert second.status == 400
            assert (await second.json())["code"] == 40060
        async with http.post(url.replace(call.token, "forged"), json=body) as wrong:
            assert (await wrong.json())["code"] == 10062
        assert json.dumps(fake_discord.sent[-1].payload) == json.dumps(body)
        await ws.close()


async def test_simulator_from_args_serves_the_sample_guild() -> None:
    fake = simulator_from_args(["--host", "127.0.0.1", "--port", "0", "--token", "t0ken"])
    assert isinstance(fake, FakeDiscord)
    async with fake, aiohttp.ClientSession() as http:
        url = f"{fake.api_base}/guilds/{GUILD}/channels"
        async with http.get(url, headers={"Authorization": "Bot t0ken"}) as r:
            assert [c["name"] for c in await r.json()] == ["general", "alerts"]
        async with http.get(url, headers={"Authorization": "Bot nope"}) as r:
            assert (r.status, await r.json()) == (401, {"message": "401: Unauthorized", "code": 0})
