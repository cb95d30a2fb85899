"""The console transport: a terminal for development, a pipe for scripting.

From a pipe (the stable contract other tools rely on) it reads one command per line, handles
each to completion before reading the next (a command that asks a question takes the next
line as its answer), prints replies to stdout, and stops the bot once stdin ends. Alerts for
the console chat are printed as they arrive. On a terminal it shows a prompt.

It starts before the plugins (see :data:`bot.app.EARLY_TRANSPORTS`): a bare ``!ping`` is
answered at once, and any other line waits until the bot is ready.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import TYPE_CHECKING, TextIO

from ..messages import CollectingResponder, Message, Reply
from .base import Transport

if TYPE_CHECKING:
    from ..app import Bot

CHAT_ID = "console"


class _StdoutResponder(CollectingResponder):
    def __init__(self, out: TextIO) -> None:
        super().__init__()
        self.out = out

    async def send(self, reply: Reply) -> None:
        self.out.write(reply.text + "\n")
        self.out.flush()


class ConsoleTransport(Transport):
    platform = "console"
    max_length = 100_000

    def __init__(self, stdin: TextIO | None = None, stdout: TextIO | None = None) -> None:
        super().__init__()
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self._task: asyncio.Task[None] | None = None
        self.bot: Bot | None = None

    async def start(self, bot: Bot) -> None:
        self.bot = bot
        self.state = "up"
        self._task = asyncio.create_task(self._run(), name="console:reader")

    async def stop(self) -> None:
        self.state = "stopped"
        if self._task and self._task is not asyncio.current_task():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def send(self, chat_id: str, text: str) -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    async def _run(self) -> None:
        assert self.bot is not None
        bot = self.bot
        cfg = bot.settings.transports.console
        interactive = self.stdin.isatty()
        responder = _StdoutResponder(self.stdout)
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        prompt_wanted = threading.Event()

        def reader() -> None:
            # A thread, because regular files and terminals cannot be awaited portably.
            while True:
                if interactive:
                    prompt_wanted.wait()
                    prompt_wanted.clear()
                line = self.stdin.readline()
                loop.call_soon_threadsafe(lines.put_nowait, line if line else None)
                if not line:
                    return

        threading.Thread(target=reader, name="console-stdin", daemon=True).start()
        if interactive:
            self.stdout.write(
                f"{bot.settings.bot.name} on the console. Type {bot.settings.bot.prefix}help, "
                "Ctrl-D to quit.\n"
            )
        try:
            while True:
                if interactive:
                    self.stdout.write("> ")
                    self.stdout.flush()
                    prompt_wanted.set()
                line = await lines.get()
                if line is None:
                    break
                text = line.rstrip("\r\n")
                if not text.strip():
                    continue
                message = Message(
                    platform=self.platform,
                    chat_id=CHAT_ID,
                    user_id=cfg.user_id,
                    user_name=cfg.name,
                    text=text,
                    responder=responder,
                )
                if not bot.ready.is_set() and not bot.answers_while_starting(text):
                    await bot.ready.wait()  # the plugins are still starting
                await bot.dispatcher.process(message)
            bot.dispatcher.abandon_asks()
            await bot.dispatcher.idle()
            await bot.alerts.flush()
        finally:
            self.state = "stopped"
            bot.request_stop()
