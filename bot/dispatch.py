"""Text or structured arguments -> command -> checks -> handler -> reply.

Every incoming message becomes its own task, so one slow handler (an API that takes seconds)
never blocks other users. The hot path does no logging and one indexed SQLite read at most
(the link check of ``linked`` commands).
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from . import metrics
from .commands import Command, Cooldowns, Permission
from .context import Context
from .errors import PermissionDenied, UsageError, UserError
from .links import link_problem
from .messages import Message, Reply
from .text import clip

if TYPE_CHECKING:
    from .app import Bot

log = logging.getLogger(__name__)

Key = tuple[str, str, str]

_SECRET_WORDS = ("secret", "token", "password", "code", "key")


def _redact(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Audit rows keep arguments, but never one that looks like a secret."""
    return {
        k: ("***" if any(w in k.lower() for w in _SECRET_WORDS) else v) for k, v in kwargs.items()
    }


class Dispatcher:
    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self._asks: dict[Key, asyncio.Future[str]] = {}
        self._ask_owner: dict[Key, asyncio.Task[Any]] = {}
        self._ask_listeners: dict[Key, asyncio.Future[None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.cooldowns = Cooldowns()

    @staticmethod
    def key(message: Message) -> Key:
        return (message.platform, message.chat_id, message.user_id)

    # ------------------------------------------------------------------ entry points

    def submit(self, message: Message) -> asyncio.Future[None]:
        """Handle a message in its own task (what transports call).

        Most messages in a group chat are not commands: those are finished here, in the
        caller, without a task (returned as a future already done), unless the sender owes
        an answer to a question."""
        loop = asyncio.get_running_loop()
        if not self._asks and not message.text.lstrip().startswith(self.bot.settings.bot.prefix):
            done: asyncio.Future[None] = loop.create_future()
            done.set_result(None)
            return done
        task = loop.create_task(self.handle(message))
        self.track(task)
        return task

    def track(self, task: asyncio.Task[Any]) -> None:
        """Count a command task as in flight (also a transport's own, for a slash command),
        so shutdown waits for it."""
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def process(
        self, message: Message, *, run: Callable[[], Awaitable[None]] | None = None
    ) -> asyncio.Future[Any] | None:
        """Handle a message and return when it is done *or* waits for this user's next line.

        The console and the test harness feed lines one at a time through this: a command
        that asks a question returns control so the next line can be its answer. Returns the
        task of the command this message started (still running if it asked), or None when
        the message was an answer (a cluster worker acknowledges each message when its own
        command is over). ``run`` is the message's command already parsed (a slash command
        that reached a cluster worker with its arguments): it runs instead of the text, and
        such a message is never an answer.
        """
        key = self.key(message)
        fut = self._asks.pop(key, None) if run is None else None
        started: asyncio.Future[Any] | None = None
        if fut is not None and not fut.done():
            owner = self._ask_owner.pop(key, None)
            fut.set_result(message.text)
            if owner is None:
                return None
            task: asyncio.Future[Any] = owner
        elif run is not None:
            task = started = asyncio.get_running_loop().create_task(run())
            self.track(task)
        else:
            task = started = self.submit(message)
        listener: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._ask_listeners[key] = listener
        try:
            await asyncio.wait({task, listener}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if self._ask_listeners.get(key) is listener:
                del self._ask_listeners[key]
        return started

    async def idle(self) -> None:
        """Wait for every handler in flight to finish."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def expects_answer(self, key: Key) -> bool:
        """A command of this (platform, chat, user) waits for their next message."""
        return key in self._asks

    def abandon_asks(self) -> None:
        """No more input will come (console stdin ended): pending questions fail at once."""
        for fut in self._asks.values():
            if not fut.done():
                fut.set_exception(UserError("No answer came, so nothing was done."))
        self._asks.clear()

    async def wait_for_answer(self, message: Message, timeout: float) -> str:
        key = self.key(message)
        old = self._asks.pop(key, None)
        if old is not None and not old.done():
            old.cancel()
        fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._asks[key] = fut
        current = asyncio.current_task()
        if current is not None:
            self._ask_owner[key] = current
        listener = self._ask_listeners.get(key)
        if listener is not None and not listener.done():
            listener.set_result(None)
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise UserError("No answer came in time, so nothing was done.") from None
        finally:
            if self._asks.get(key) is fut:
                del self._asks[key]
            if self._ask_owner.get(key) is current:
                del self._ask_owner[key]

    # ------------------------------------------------------------------ text commands

    async def handle(self, message: Message) -> None:
        key = self.key(message)
        fut = self._asks.get(key)
        if fut is not None and not fut.done():
            del self._asks[key]
            fut.set_result(message.text)
            return
        prefix = self.bot.settings.bot.prefix
        text = message.text.strip()
        if not text.startswith(prefix):
            return
        body = text[len(prefix) :]
        if not body or body[0].isspace():
            return
        cmd, rest, matched = self.bot.registry.resolve(body)
        if cmd is None:
            await self._unknown(message, body, matched)
            return
        await self.run(cmd, message, text=rest)

    async def _unknown(self, message: Message, body: str, matched: list[str]) -> None:
        prefix = self.bot.settings.bot.prefix
        if matched:
            access = self.bot.access
            caller = access.caller_of(message)
            subs = [c for c in self.bot.registry.group_children(matched) if access.shows(caller, c)]
            if subs:
                lines = [f"{prefix}{' '.join(matched)} needs a subcommand:"]
                lines += [f"  {c.usage(prefix)} - {c.help}" for c in subs]
                await message.responder.send(Reply("\n".join(lines), error=True))
                return
        down = self.bot.plugins.down_plugin_for(body.lower().split())
        if down is not None:  # a known command whose plugin is not running: say why
            reason = clip(self.bot.scrub(down[1]))
            await message.responder.send(
                Reply(f"the {down[0]} plugin is down: {reason}", error=True)
            )
            return
        word = body.split()[0].lower()
        names = [n for n in self.bot.registry.names() if " " not in n]
        close = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
        hint = f" Did you mean {prefix}{close[0]}?" if close else ""
        await message.responder.send(
            Reply(f"Unknown command {prefix}{word}.{hint} Try {prefix}help.", error=True)
        )

    # ------------------------------------------------------------------ running

    async def run(
        self,
        cmd: Command,
        message: Message,
        *,
        text: str | None = None,
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        """Check, parse (from ``text``) or complete (structured ``kwargs``), call, reply."""
        bot = self.bot
        ctx = self.context_for(message, cmd)
        args: dict[str, Any] = {}
        audited = cmd.permission >= Permission.ADMIN
        started, outcome = time.perf_counter(), metrics.OK
        try:
            self._check(ctx, cmd)
            if kwargs is not None:
                args = cmd.complete(dict(kwargs))
            else:
                try:
                    args = cmd.parse(
                        text or "", platform=message.platform, mentions=message.mentions
                    )
                except UsageError as exc:
                    raise UsageError(
                        f"{exc.message}\nUsage: {cmd.usage(bot.settings.bot.prefix)}"
                    ) from None
            wait = self.cooldowns.check(cmd, message.platform, message.user_id, bot.clock())
            if wait > 0:
                raise UserError(f"Slow down: you can use this again in {wait:.0f} s.")
            result = await cmd.handler(ctx, **args)
            if result is not None:
                reply = (
                    result if isinstance(result, Reply) else Reply(str(result), private=cmd.private)
                )
                await message.responder.send(reply)
            if audited:
                bot.store.audit(message.platform, message.user_id, cmd.name, _redact(args), "ok")
        except UserError as exc:
            outcome = metrics.command_outcome(exc)
            if audited and not isinstance(exc, PermissionDenied):
                bot.store.audit(
                    message.platform, message.user_id, cmd.name, _redact(args), f"refused: {exc}"
                )
            await self._safe_send(message, Reply(exc.message, private=True, error=True))
        except asyncio.CancelledError:
            raise
        except Exception:
            outcome, error_id = metrics.FAILED, uuid.uuid4().hex[:8]
            log.exception(
                "command %s failed (error id %s)",
                cmd.name,
                error_id,
                extra={"error_id": error_id, "plugin": cmd.plugin},
            )
            if audited:
                bot.store.audit(
                    message.platform, message.user_id, cmd.name, _redact(args), f"error {error_id}"
                )
            await self._safe_send(
                message,
                Reply(
                    f"Sorry, something went wrong running {cmd.name}. (error id {error_id})",
                    private=True,
                    error=True,
                ),
            )
        metrics.command_done(
            cmd.name, cmd.plugin, message.platform, outcome, time.perf_counter() - started
        )

    def context_for(self, message: Message, cmd: Command) -> Context:
        """The context ``cmd`` runs in for ``message``: one way to build it for text and
        slash commands and for autocomplete, so the caller is worked out the same way."""
        bot = self.bot
        plugin = bot.plugins.runtimes.get(cmd.plugin)
        return Context(bot, message, cmd, plugin, bot.access.caller_of(message))

    def _check(self, ctx: Context, cmd: Command) -> None:
        self.bot.access.check(ctx.caller, cmd, ctx.chat_id)
        if cmd.permission == Permission.LINKED or cmd.trusted_link:
            problem = link_problem(ctx, cmd)
            if problem is not None:
                raise PermissionDenied(problem)

    async def _safe_send(self, message: Message, reply: Reply) -> None:
        try:
            await message.responder.send(reply)
        except Exception:
            log.exception("could not send a reply on %s", message.platform)
