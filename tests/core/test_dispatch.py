"""The dispatcher: permissions, cooldowns, errors, ask, concurrency — through the harness."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

SAMPLE = '''
import asyncio
from decimal import Decimal
from bot import Permission, UserError, command, hookimpl

@command(cooldown=(2, 10.0))
async def roll(ctx) -> str:
    """Roll."""
    return "rolled"

@command("vault open", permission=Permission.ADMIN)
async def vault_open(ctx, code: str, amount: Decimal) -> str:
    """Open the vault."""
    return f"opened with {amount}"

@command("vault owner", permission=Permission.OWNER)
async def vault_owner(ctx) -> str:
    """Owners only."""
    return "owner ok"

@command(permission=Permission.LINKED)
async def mine(ctx) -> str:
    """Needs a link."""
    return "account " + await ctx.linked_account()

@command()
async def fail(ctx, how: str = "user") -> str:
    """Fail."""
    if how == "user":
        raise UserError("That cannot be done.")
    raise RuntimeError("boom with internals")

@command()
async def slow(ctx) -> str:
    """Take a while."""
    await asyncio.sleep(0.5)
    return "slow done"

@command()
async def quiz(ctx) -> str:
    """Ask something."""
    answer = await ctx.ask("What is your name?")
    ok = await ctx.confirm(f"Is {answer} right?")
    return f"hello {answer}" if ok else "cancelled"

@hookimpl
def bot_commands():
    return [roll, vault_open, vault_owner, mine, fail, slow, quiz]
'''


@pytest.fixture
def sample(plugin_dir: Callable[..., Path]) -> dict[str, object]:
    directory = plugin_dir(sample=SAMPLE)
    return {
        "plugins": {"sample": {}},
        "config": {"bot": {"plugin_dirs": [str(directory)]}},
        "owners": {"console": ["boss"]},
    }


async def test_permission_refusal_and_audit(bot_harness, sample) -> None:
    async with bot_harness(**sample) as bot:
        chat = bot.chat()
        assert await chat.say("!vault open 1234 5", user="u1") == [
            "This command is for admins only."
        ]
        assert await chat.say("!vault open 1234 5", user="u2", admin=True) == ["opened with 5"]
        assert await chat.say("!vault owner", user="u2", admin=True) == [
            "Only the bot's owners can use this command."
        ]
        assert await chat.say("!vault owner", user="boss") == ["owner ok"]
        rows = bot.bot.store.audit_rows()
        opened = [r for r in rows if r["command"] == "vault open"]
        assert len(opened) == 1 and opened[0]["outcome"] == "ok"
        assert '"code": "***"' in opened[0]["arguments"]  # secrets never reach the audit log
        assert "1234" not in opened[0]["arguments"]


async def test_help_lists_only_what_the_caller_may_run(bot_harness, sample) -> None:
    async with bot_harness(**sample) as bot:
        chat = bot.chat()
        (user_help,) = await chat.say("!help", user="u1")
        (admin_help,) = await chat.say("!help", user="a", admin=True)
        assert "!vault open" not in user_help and "!plugins" not in user_help
        assert "!vault open <code> <amount>" in admin_help
        (detail,) = await chat.say("!help roll", user="u1")
        assert detail.startswith("!roll\nRoll.")


async def test_usage_errors_reply_with_the_usage_line(bot_harness, sample) -> None:
    async with bot_harness(**sample) as bot:
        (reply,) = await bot.chat().say("!vault open 1234 lots", user="a", admin=True)
        assert reply == "<amount> must be a number, not 'lots'\nUsage: !vault open <code> <amount>"
        (reply,) = await bot.chat().say("!vault", user="a", admin=True)
        assert reply.startswith("!vault needs a subcommand:")


async def test_cooldowns_per_user(bot_harness, sample) -> None:
    async with bot_harness(**sample) as bot:
        chat = bot.chat()
        assert await chat.say("!roll", user="u1") == ["rolled"]
        assert await chat.say("!roll", user="u1") == ["rolled"]
        (reply,) = await chat.say("!roll", user="u1")
        assert reply.startswith("Slow down")
        assert await chat.say("!roll", user="u2") == ["rolled"]  # others are not affected
        bot.clock.advance(11)
        assert await chat.say("!roll", user="u1") == ["rolled"]


async def test_linked_permission(bot_harness, sample) -> None:
    async with bot_harness(**sample) as bot:
        chat = bot.chat()
        (reply,) = await chat.say("!mine", user="u1")
        assert reply == "You need to link your sample account first: !link sample ..."
        bot.bot.store.set_link("console", "u1", "sample", "acc-1")
        assert await chat.say("!mine", user="u1") == ["account acc-1"]
        (links,) = await chat.say("!links", user="u1")
        assert links == "sample: acc-1 (claimed, not approved: link again to ask an admin)"


async def test_user_errors_and_bugs(bot_harness, sample, caplog: pytest.LogCaptureFixture) -> None:
    async with bot_harness(**sample) as bot:
        chat = bot.chat()
        assert await chat.say("!fail", user="u1") == ["That cannot be done."]
        with caplog.at_level(logging.ERROR):
            (reply,) = await chat.say("!fail bug", user="u1")
        assert reply.startswith("Sorry, something went wrong running fail. (error id ")
        assert "boom" not in reply
        error_id = reply.rsplit(" ", 1)[1].rstrip(")")
        assert any(error_id in r.getMessage() and r.exc_info for r in caplog.records)


async def test_one_slow_handler_does_not_block_others(bot_harness, sample) -> None:
    async with bot_harness(**sample) as bot:
        from bot.messages import CollectingResponder, Message

        slow_out = CollectingResponder()
        fast_out = CollectingResponder()
        d = bot.bot.dispatcher
        d.submit(Message("console", "c", "u1", "u1", "!slow", slow_out))
        fast = d.submit(Message("console", "c", "u2", "u2", "!roll", fast_out))
        await asyncio.wait_for(fast, 0.3)
        assert [r.text for r in fast_out.replies] == ["rolled"] and not slow_out.replies
        await d.idle()
        assert [r.text for r in slow_out.replies] == ["slow done"]


async def test_ask_takes_the_same_users_next_message(bot_harness, sample) -> None:
    async with bot_harness(**sample) as bot:
        chat = bot.chat()
        assert await chat.say("!quiz", user="u1") == ["What is your name?"]
        assert await chat.say("!roll", user="u2") == ["rolled"]  # another user is unaffected
        assert await chat.say("Ann", user="u1") == ["Is Ann right? (yes/no)"]
        assert await chat.say("yes", user="u1") == ["hello Ann"]
        # A native confirmation (a button on Discord/Telegram) answers without a text reply.
        assert await chat.say("!quiz", user="u3", confirm=False) == ["What is your name?"]
        replies = await chat.say("Bo", user="u3")
        assert replies == ["Is Bo right?", "cancelled"]


async def test_ask_times_out_with_a_clear_message(bot_harness, sample) -> None:
    sample["config"]["bot"]["ask_timeout"] = 0.1
    async with bot_harness(**sample) as bot:
        chat = bot.chat()
        assert await chat.say("!quiz", user="u1") == ["What is your name?"]
        await bot.bot.dispatcher.idle()
        assert chat.replies[-1].text == "No answer came in time, so nothing was done."


async def test_chatter_is_finished_without_a_task(bot_harness, sample) -> None:
    """A message that is not a command costs no task (most of a group chat's traffic)."""
    async with bot_harness(**sample) as bot:
        from bot.messages import CollectingResponder, Message

        out = CollectingResponder()
        d = bot.bot.dispatcher
        before = len(asyncio.all_tasks())
        done = d.submit(Message("console", "c", "u1", "u1", "just chatting", out))
        assert done.done() and len(asyncio.all_tasks()) == before
        await done
        command = d.submit(Message("console", "c", "u1", "u1", "  !roll", out))
        assert not command.done()
        await asyncio.wait_for(command, 10)
        assert [r.text for r in out.replies] == ["rolled"]


async def test_an_answer_without_the_prefix_still_reaches_the_question(bot_harness, sample) -> None:
    """Transports call submit: while a question waits, plain text goes to the handler."""
    async with bot_harness(**sample) as bot:
        from bot.messages import CollectingResponder, Message

        out = CollectingResponder()
        d = bot.bot.dispatcher

        async def replies(count: int) -> list[str]:
            for _ in range(1000):
                if len(out.replies) >= count:
                    break
                await asyncio.sleep(0.01)
            return [r.text for r in out.replies]

        quiz = d.submit(Message("console", "c", "u1", "u1", "!quiz", out))
        assert await replies(1) == ["What is your name?"]
        d.submit(Message("console", "c", "u1", "u1", "Ann", out))
        assert await replies(2) == ["What is your name?", "Is Ann right? (yes/no)"]
        d.submit(Message("console", "c", "u1", "u1", "yes", out))
        await asyncio.wait_for(quiz, 10)
        assert [r.text for r in out.replies][-1] == "hello Ann"
