"""How the Discord transport answers: replies to messages and interactions, and yes/no buttons.

Two things make Discord replies subtle, and both are handled here once:

- An interaction must be acknowledged within 3 seconds, exactly once, and whether the answer
  is ephemeral is decided by that first acknowledgement. Handlers that talk to slow APIs are
  therefore deferred after ``defer_after`` seconds; a later reply that needs the other
  visibility (an error after a public "thinking…") replaces the placeholder instead of
  inheriting its visibility, so private data is never shown to the channel.
- Confirmation buttons are rendered with discord.py's ``View`` but their clicks are routed
  here by ``custom_id`` rather than through the library's view store: one path acknowledges
  every click exactly once, and a click on a question that already expired (or was asked
  before a restart) is answered instead of leaving the user with "This interaction failed".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ...messages import Reply
from ..base import split_message
from .library import discord

log = logging.getLogger(__name__)

#: Discord's message length limit
LIMIT = 2000
#: custom_id prefix of confirmation buttons: ``bot-confirm:<token>:yes|no``
CONFIRM_PREFIX = "bot-confirm"

Editor = Callable[[str], Awaitable[None]]
Poster = Callable[[str, discord.ui.View], Awaitable[Editor]]

DM_REFUSED = (
    "I could not send you a direct message. Allow direct messages from this server's members "
    "(Privacy Settings) and try again."
)


def parts_of(text: str) -> list[str]:
    """The reply split to Discord's limit, without the empty parts Discord refuses."""
    return [p for p in split_message(text, LIMIT) if p.strip()]


@dataclass
class _Pending:
    user_id: str
    question: str
    future: asyncio.Future[bool]


class Confirmations:
    """The yes/no questions waiting for a click, by token."""

    def __init__(self) -> None:
        self._pending: dict[str, _Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    @staticmethod
    def _view(token: str) -> discord.ui.View:
        view = discord.ui.View(timeout=None)
        view.add_item(
            discord.ui.Button(
                label="Yes",
                style=discord.ButtonStyle.success,
                custom_id=f"{CONFIRM_PREFIX}:{token}:yes",
            )
        )
        view.add_item(
            discord.ui.Button(
                label="No",
                style=discord.ButtonStyle.danger,
                custom_id=f"{CONFIRM_PREFIX}:{token}:no",
            )
        )
        # A finished view is rendered but not stored by discord.py: clicks come to click().
        view.stop()
        return view

    async def ask(self, post: Poster, question: str, *, user_id: str, timeout: float) -> bool:
        """Post ``question`` with buttons for ``user_id``; True only if they click Yes in time."""
        token = secrets.token_hex(8)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending[token] = _Pending(user_id, question, future)
        try:
            edit = await post(question, self._view(token))
        except BaseException:
            self._pending.pop(token, None)
            raise
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except TimeoutError:
            if self._pending.pop(token, None) is None and future.done():
                return future.result()  # the click won the race with the clock
            try:
                await edit(f"{question}\n(No answer in time, so nothing was done.)")
            except discord.HTTPException as exc:
                log.warning("could not mark a confirmation as expired: %s", exc)
            return False

    async def click(self, interaction: discord.Interaction) -> bool:
        """Answer a button click; False if the button is not one of ours."""
        data = interaction.data or {}
        custom_id = str(data.get("custom_id", ""))
        prefix, _, rest = custom_id.partition(":")
        if prefix != CONFIRM_PREFIX:
            return False
        token, _, answer = rest.partition(":")
        pending = self._pending.get(token)
        if pending is None:
            old = interaction.message.content if interaction.message else ""
            await interaction.response.edit_message(
                content=f"{old}\n(This question has expired.)".strip(), view=None
            )
            return True
        if str(interaction.user.id) != pending.user_id:
            await interaction.response.send_message(
                "Only the person who ran the command can answer this.", ephemeral=True
            )
            return True
        del self._pending[token]
        yes = answer == "yes"
        if not pending.future.done():
            pending.future.set_result(yes)
        outcome = "Confirmed" if yes else "Cancelled"
        await interaction.response.edit_message(
            content=f"{pending.question}\n{outcome} by {interaction.user.display_name}.",
            view=None,
        )
        return True

    def cancel_all(self) -> None:
        """The transport is stopping: every open question is answered No (nothing is done)."""
        for pending in self._pending.values():
            if not pending.future.done():
                pending.future.set_result(False)
        self._pending.clear()


class MessageResponder:
    """Answers a prefix command typed in a channel or a DM.

    Errors go to the channel (the user is looking there); private replies go to the user's
    DMs when the command was typed in a server channel. Only ids are kept and the client is
    looked up at send time, so a reply still goes out if the connection was rebuilt while
    the command ran.
    """

    def __init__(
        self,
        client: Callable[[], discord.Client],
        message: discord.Message,
        confirms: Confirmations,
        confirm_timeout: float,
    ) -> None:
        self._client = client
        self.channel_id = message.channel.id
        self.author_id = message.author.id
        self.in_guild = message.guild is not None
        self.reference = message.to_reference(fail_if_not_exists=False)
        self.confirms = confirms
        self.confirm_timeout = confirm_timeout
        self._first = True

    async def send(self, reply: Reply) -> None:
        parts = parts_of(reply.text)
        if not parts:
            return
        if reply.private and not reply.error and self.in_guild:
            try:
                dm = await self._client().create_dm(discord.Object(self.author_id))
                for part in parts:
                    await dm.send(part)
            except discord.Forbidden:
                await self._to_channel([DM_REFUSED])
            return
        await self._to_channel(parts)

    async def _to_channel(
        self, parts: list[str], view: discord.ui.View | None = None
    ) -> discord.Message:
        channel = self._client().get_partial_messageable(self.channel_id)
        sent: discord.Message | None = None
        for i, part in enumerate(parts):
            kwargs: dict[str, object] = {}
            if self._first:
                kwargs["reference"] = self.reference
                kwargs["mention_author"] = False
                self._first = False
            if view is not None and i == len(parts) - 1:
                kwargs["view"] = view
            sent = await channel.send(part, **kwargs)  # type: ignore[arg-type]
        assert sent is not None
        return sent

    async def confirm(self, question: str, timeout: float) -> bool | None:
        async def post(text: str, view: discord.ui.View) -> Editor:
            sent = await self._to_channel([text], view)

            async def edit(new: str) -> None:
                channel = self._client().get_partial_messageable(self.channel_id)
                await channel.get_partial_message(sent.id).edit(content=new[:LIMIT], view=None)

            return edit

        return await self.confirms.ask(
            post,
            question[:LIMIT],
            user_id=str(self.author_id),
            timeout=min(timeout, self.confirm_timeout),
        )


class InteractionResponder:
    """Answers one slash command: the first reply acknowledges it, later ones follow up."""

    def __init__(
        self,
        interaction: discord.Interaction,
        confirms: Confirmations,
        *,
        private: bool,
        defer_after: float,
        confirm_timeout: float,
    ) -> None:
        self.interaction = interaction
        self.confirms = confirms
        self.private = private
        self.defer_after = defer_after
        self.confirm_timeout = confirm_timeout
        #: "new" (nothing sent), "deferred" (a thinking placeholder), "answered"
        self.state = "new"
        self.deferred_ephemeral = False
        self._lock = asyncio.Lock()
        self._timer: asyncio.Task[None] | None = None

    def start_timer(self) -> None:
        """Defer if the handler has not answered within ``defer_after`` seconds."""
        self._timer = asyncio.get_running_loop().create_task(self._defer_later())

    async def _defer_later(self) -> None:
        await asyncio.sleep(self.defer_after)
        async with self._lock:
            if self.state != "new":
                return
            try:
                await self.interaction.response.defer(ephemeral=self.private, thinking=True)
            except discord.HTTPException as exc:
                log.warning("could not defer an interaction: %s", exc)
                return
            self.state, self.deferred_ephemeral = "deferred", self.private

    def _stop_timer(self) -> None:
        if self._timer is not None and self._timer is not asyncio.current_task():
            self._timer.cancel()

    async def _post(
        self, text: str, ephemeral: bool, view: discord.ui.View | None = None
    ) -> Editor:
        interaction = self.interaction
        extra = {} if view is None else {"view": view}
        async with self._lock:
            self._stop_timer()
            if self.state == "new":
                await interaction.response.send_message(text, ephemeral=ephemeral, **extra)
                self.state = "answered"
                return self._edit_original
            if self.state == "deferred":
                self.state = "answered"
                if ephemeral == self.deferred_ephemeral:
                    await interaction.edit_original_response(content=text, **extra)
                    return self._edit_original
                # The placeholder's visibility is fixed: replace it with a fresh message.
                with contextlib.suppress(discord.HTTPException):
                    await interaction.delete_original_response()
            sent = await interaction.followup.send(text, ephemeral=ephemeral, wait=True, **extra)

            async def edit(new: str) -> None:
                await sent.edit(content=new[:LIMIT], view=None)

            return edit

    async def _edit_original(self, text: str) -> None:
        await self.interaction.edit_original_response(content=text[:LIMIT], view=None)

    async def send(self, reply: Reply) -> None:
        ephemeral = reply.private or reply.error
        for part in parts_of(reply.text):
            try:
                await self._post(part, ephemeral)
            except discord.HTTPException as exc:
                # Interaction tokens last 15 minutes; a public reply can still be posted.
                if ephemeral or self.interaction.channel is None:
                    raise
                log.warning("interaction reply failed (%s); posting in the channel", exc)
                channel = self.interaction.channel
                assert isinstance(channel, discord.abc.Messageable)
                await channel.send(part)

    async def confirm(self, question: str, timeout: float) -> bool | None:
        async def post(text: str, view: discord.ui.View) -> Editor:
            return await self._post(text, True, view)

        return await self.confirms.ask(
            post,
            question[:LIMIT],
            user_id=str(self.interaction.user.id),
            timeout=min(timeout, self.confirm_timeout),
        )

    async def finish(self) -> None:
        """The handler is done: an interaction that got no reply must still be answered."""
        async with self._lock:
            self._stop_timer()
            state = self.state
            self.state = "answered"
        try:
            if state == "new":
                await self.interaction.response.send_message("Done.", ephemeral=True)
            elif state == "deferred":
                await self.interaction.edit_original_response(content="Done.")
        except discord.HTTPException as exc:
            log.warning("could not close an interaction: %s", exc)
