"""The chat side of the rooms plugin: presences tied to chat users and chats, and balances.

The protocol client and the presence manager know nothing about chat. This layer decides what
a chat user sends (nickname from the display name, customer id and ``registered`` from their
``link rooms`` once it is proven or approved (a claim joins as a guest), credits from their
stored balance, ``ipAddress`` from config because a chat message carries no client address),
keeps a row per presence in the store, and tells the user in the chat where they joined when
a presence ends without them asking.

Restart policy (the plugin's documented behaviour):

- On a clean shutdown every presence is left with leaveRoom and its row deleted. A row whose
  leave failed (the API was down) is kept, because the customer may still be in the room.
- On start-up each remaining row (left by a crash, a kill, or a failed leave) is *restored*:
  one immediate pingRoom. If the API still has the customer, pinging resumes silently and the
  user stays present with their original "since" time. If the ping fails (the API purged the
  customer while the bot was down, refuses the key, or cannot be reached), the row is dropped
  and the user is told, in the chat where they joined, that the presence could not be resumed
  and how to join again. The bot does not rejoin on its own: the display nickname would change
  and a user who walked away hours ago would be put back in a room without asking.
- Rows too damaged to rebuild a presence from are deleted and logged; nobody can be told.

Notifications go through the alert router on the ``rooms.presence`` topic: the chat is
subscribed (filtered to itself) when someone joins from it, so a burst of losses (an API
outage drops everyone at once) reaches each chat as one paced message, not a flood.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from bot import link_trusted
from bot.plugins import Health

from .client import RoomsClient, is_key_refusal, is_not_in_room
from .errors import (
    SERVICE,
    RoomsAlreadyPresent,
    RoomsError,
    RoomsInvalidRequest,
    RoomsNotPresent,
    RoomsUnavailable,
)
from .models import MAX_NICKNAME, JoinRequest, UpdateCreditsRequest, check_credits, check_id
from .presence import Presence, PresenceManager
from .records import ChatUser, RoomsRecords, StoredPresence

if TYPE_CHECKING:
    from bot.store import Link, Store

    from .config import RoomsConfig
    from .simulator import RoomsSimulator

log = logging.getLogger(__name__)

PRESENCE_TOPIC = "rooms.presence"
"""Alert topic for presences that ended without the user asking (lost, not resumed)."""

LEAVE_WITHIN = 5.0
"""Seconds shutdown waits for every leaveRoom; the core gives a plugin 15 s to stop."""

RESTORE_CONCURRENCY = 10
"""Stored presences resumed at once after a restart; the rest wait their turn."""


class AlertSink(Protocol):
    """What the service needs of the bot's alert router."""

    def publish(self, topic: str, text: str, data: dict[str, Any] | None = None) -> int: ...

    def subscribe(
        self, platform: str, chat_id: str, topic: str, filter: str | None = None
    ) -> bool: ...


def chat_key(platform: str, chat_id: str) -> str:
    return f"{platform}:{chat_id}"


def same_chat(filter: str, text: str, data: dict[str, Any]) -> bool:
    """The ``rooms.presence`` matcher: a chat's subscription filter is the chat itself."""
    return data.get("chat") == filter


def nickname_from(display_name: str) -> str:
    """The nickname joinRoom gets: the chat display name, made printable and short enough.

    A chat user cannot always change a display name that has a control character or is very
    long, so it is cleaned rather than refused; the reply shows the result.
    """
    printable = "".join(ch if ch.isprintable() else " " for ch in display_name)
    nickname = " ".join(printable.split())[:MAX_NICKNAME].strip()
    if not nickname:
        raise RoomsInvalidRequest(
            "Your chat display name has nothing the rooms service can show; "
            "set a display name and try again."
        )
    return nickname


@dataclass(frozen=True, slots=True)
class LeaveOutcome:
    """A leave: ``error`` is None when the API confirmed it (or had already dropped them)."""

    presence: Presence
    error: RoomsError | None = None


@dataclass(frozen=True, slots=True)
class CreditsOutcome:
    """A balance change; ``pushed`` when the API was told with updateCredits."""

    credits: int
    pushed: bool
    customer_id: int | None


@dataclass(slots=True)
class RestoreReport:
    """What start-up did with the presences stored by the previous run."""

    restored: list[StoredPresence] = field(default_factory=list)
    dropped: list[tuple[StoredPresence, RoomsError]] = field(default_factory=list)
    damaged: int = 0


class RoomsService:
    """The plugin's state (``ctx.state``): join, leave, list, credits and links for chat
    users; ``ctx.client`` is its :class:`RoomsClient`."""

    def __init__(
        self,
        api: RoomsClient,
        config: RoomsConfig,
        store: Store,
        alerts: AlertSink,
        *,
        prefix: str = "!",
        simulator: RoomsSimulator | None = None,
    ) -> None:
        self.api = api
        self.config = config
        self.store = store
        self.records = RoomsRecords(store)
        self.alerts = alerts
        self.prefix = prefix
        #: the bundled simulator when ``simulate: true`` (tests inspect its rooms)
        self.simulator = simulator
        self.presence = PresenceManager.from_config(api, config, on_lost=self._on_lost)
        self.restoring = False
        self.last_restore: RestoreReport | None = None
        self._joining: collections.Counter[str] = collections.Counter()
        self._credit_locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._subscribed: set[str] = set()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    # -- presence --------------------------------------------------------------------------

    async def join(self, user: ChatUser, performer_id: int) -> Presence:
        """joinRoom for a chat user and keep them present; the row is stored on success."""
        self._check_open()
        check_id("performer id", performer_id)
        if self.presence.get(performer_id, user.owner) is not None:
            raise RoomsAlreadyPresent(performer_id)
        held = len(self.presence.presences(user.owner)) + self._joining[user.owner]
        if held >= self.config.max_rooms_per_user:
            raise RoomsError(
                f"You are already in {self.config.max_rooms_per_user} rooms, the most one user "
                f"may be in at once; leave one first with {self.prefix}room leave <performer id>.",
                code="limit",
            )
        customer_id = self._customer_id(self.store.get_link(user.platform, user.user_id, SERVICE))
        request = JoinRequest(
            performer_id=performer_id,
            nickname=nickname_from(user.name),
            ip_address=self.config.ip_address,
            registered=customer_id is not None,
            credits=self.records.balance(user.platform, user.user_id),
            customer_id=customer_id,
        )
        self._joining[user.owner] += 1
        try:
            presence = await self.presence.join(request, owner=user.owner)
        finally:
            self._joining[user.owner] -= 1
            if self._joining[user.owner] <= 0:
                del self._joining[user.owner]
        # No await between the join and these writes: a loss cannot race the row.
        self.records.save_presence(presence, user)
        self._subscribe(user)
        return presence

    async def leave(self, user: ChatUser, performer_id: int | None = None) -> LeaveOutcome:
        """Stop pinging and leaveRoom; with no performer, the user's only room.

        The presence ends on our side even if the API does not confirm (without pings it
        purges the customer soon); the outcome says so. "Not in this room" counts as left.
        """
        if performer_id is None:
            mine = self.presence.presences(user.owner)
            if not mine:
                raise RoomsNotPresent()
            if len(mine) > 1:
                ids = ", ".join(str(p.performer_id) for p in mine)
                raise RoomsError(
                    f"You are in {len(mine)} rooms (performers {ids}); say which one, "
                    f"e.g. {self.prefix}room leave {mine[0].performer_id}.",
                    code="ambiguous",
                )
            performer_id = mine[0].performer_id
        check_id("performer id", performer_id)
        presence = self.presence.get(performer_id, user.owner)
        if presence is None:
            raise RoomsNotPresent(performer_id)
        try:
            await self.presence.leave(performer_id, owner=user.owner)
        except RoomsNotPresent:
            raise  # another leave (or a loss) ended it first; that one updated the row
        except RoomsError as exc:
            self.records.delete_presence(performer_id, user.owner)
            return LeaveOutcome(presence, None if is_not_in_room(exc) else exc)
        self.records.delete_presence(performer_id, user.owner)
        return LeaveOutcome(presence)

    def presences(self, user: ChatUser) -> list[Presence]:
        """The user's live presences, oldest first."""
        return self.presence.presences(user.owner)

    # -- credits and links -----------------------------------------------------------------

    def balance(self, platform: str, user_id: str) -> int:
        return self.records.balance(platform, user_id)

    def registered_customer(self, platform: str, user_id: str) -> int | None:
        """The customer id a chat user linked, or None for a guest."""
        return self._customer_id(self.store.get_link(platform, user_id, SERVICE))

    async def set_credits(self, platform: str, user_id: str, credits: int) -> CreditsOutcome:
        """Set a chat user's balance; for a registered customer, updateCredits first.

        The balance is stored only after the API accepted it, so a refusal or an unanswered
        call changes nothing here. Pushes for one user are serialized so the stored value is
        the one the API got last. A guest's balance is only stored (the API refuses
        updateCredits for unregistered customers) and goes with their next joinRoom.
        """
        self._check_open()
        check_credits(credits)
        owner = ChatUser(platform, user_id, "", "").owner
        lock = self._credit_locks.setdefault((platform, str(user_id)), asyncio.Lock())
        async with lock:
            customer_id = self.registered_customer(platform, user_id)
            if customer_id is not None:
                await self.api.update_credits(UpdateCreditsRequest(customer_id, credits))
            self.records.set_balance(platform, user_id, credits)
            self.records.update_presence_credits(owner, credits)
            for presence in self.presence.presences(owner):
                presence.credits = credits
        return CreditsOutcome(credits, customer_id is not None, customer_id)

    def claimed_customer(self, platform: str, user_id: str) -> int | None:
        """The customer id a chat user linked that is not approved yet (they join as a
        guest until an admin approves it), or None."""
        link = self.store.get_link(platform, user_id, SERVICE)
        if link is None or link_trusted(link, self.config.link_approval):
            return None
        return self._customer_id(link, trust=False)

    def check_link(self, user: ChatUser, customer_id: int) -> bool:
        """Whether linking ``customer_id`` changes anything; raises if it may not be linked.

        One customer id belongs to one chat user: otherwise anyone could claim someone
        else's id and push their credits. Relinking while present is refused because the
        rooms were joined (and are pinged) under the old id. The link itself is written by
        the command (``ctx.claim_link``), which makes it a claim for an admin to approve.
        """
        check_id("customer id", customer_id)
        account = str(customer_id)
        other = self.store.find_link_by_account(SERVICE, account)
        if other is not None and (other.platform, other.user_id) != (user.platform, user.user_id):
            raise RoomsError(
                f"Customer id {customer_id} is already linked to another chat user; "
                "ask an admin if it is yours.",
                code="taken",
            )
        current = self.store.get_link(user.platform, user.user_id, SERVICE)
        if current is not None and current.account == account:
            return False
        if self.presence.presences(user.owner):
            raise RoomsError(
                f"Leave your rooms first ({self.prefix}room leave): you joined them under your "
                "current link.",
                code="present",
            )
        return True

    # -- restart and shutdown --------------------------------------------------------------

    async def restore_stored(self) -> RestoreReport:
        """Resume or drop the presences a previous run left stored (see the module doc)."""
        report = RestoreReport()
        self.restoring = True
        try:
            stored, damaged = self.records.stored_presences()
            for row in damaged:
                self.records.delete_row(row)
            report.damaged = len(damaged)
            gate = asyncio.Semaphore(RESTORE_CONCURRENCY)

            async def resume(item: StoredPresence) -> RoomsError | None:
                async with gate:
                    try:
                        await self.presence.restore(item.presence)
                    except RoomsError as exc:
                        return exc
                    return None

            errors = await asyncio.gather(*(resume(item) for item in stored))
            for item, error in zip(stored, errors, strict=True):
                if error is None:
                    report.restored.append(item)
                    self._subscribe(item.user)
                    continue
                if self._closed or isinstance(error, RoomsAlreadyPresent):
                    continue  # shutting down (keep it for next time), or already rejoined
                self.records.delete_presence(item.presence.performer_id, item.presence.owner)
                report.dropped.append((item, error))
                pid = item.presence.performer_id
                self._tell(
                    item.user,
                    pid,
                    f"{item.user.name}: the bot restarted and your presence in performer "
                    f"{pid}'s room could not be resumed: {error.message} Use "
                    f"{self.prefix}room join {pid} to enter again.",
                )
            if stored or damaged:
                log.info(
                    "rooms: after the restart %d presence(s) resumed, %d dropped, %d damaged",
                    len(report.restored),
                    len(report.dropped),
                    report.damaged,
                )
        finally:
            self.restoring = False
            self.last_restore = report
        return report

    async def close(self) -> None:
        """Leave every presence and close the client; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        try:
            results = await self.presence.close(within=LEAVE_WITHIN)
            for presence, error in results:
                if error is None or is_not_in_room(error):
                    self.records.delete_presence(presence.performer_id, presence.owner)
                else:
                    log.warning(
                        "rooms: kept %s's presence in performer %s for the next start: %s",
                        presence.owner,
                        presence.performer_id,
                        error.message,
                    )
        finally:
            await self.api.close()

    # -- health ----------------------------------------------------------------------------

    def health(self) -> Health:
        """From what the last calls showed; no network (HTTP has no connection to watch)."""
        if self._closed:
            return Health.down("The rooms plugin is shutting down.")
        failure = self.api.last_failure
        if failure is not None:
            if is_key_refusal(failure):
                return Health.down(
                    "The rooms service rejected the bot's API key; an admin must check the config."
                )
            if isinstance(failure, RoomsUnavailable):
                return Health.down(failure.message)
            return Health.degraded(failure.message)
        live = self.presence.presences()
        failing = [p for p in live if p.failures]
        if failing:
            why = failing[0].last_error.message if failing[0].last_error else "no answer"
            return Health.degraded(
                f"Keep-alive pings are failing for {len(failing)} of {len(live)} presence(s): {why}"
            )
        if self.restoring:
            return Health.degraded("Resuming the room presences kept before the restart.")
        return Health.up(f"{len(live)} chat user presence(s) kept alive" if live else "")

    # -- internals -------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RoomsUnavailable("The rooms plugin is shutting down.")

    def _customer_id(self, link: Link | None, *, trust: bool = True) -> int | None:
        """The customer id of a link that may act as that customer: proven or approved (or
        any claim under ``link_approval: none``). A mere claim joins as a guest."""
        if link is None or (trust and not link_trusted(link, self.config.link_approval)):
            return None
        try:
            return check_id("customer id", int(link.account))
        except (ValueError, RoomsInvalidRequest):
            raise RoomsInvalidRequest(
                f"Your linked rooms customer id {link.account!r} is not a valid id; link it "
                f"again with {self.prefix}link rooms <customer id>."
            ) from None

    def _subscribe(self, user: ChatUser) -> None:
        key = chat_key(user.platform, user.chat_id)
        if key not in self._subscribed:
            self.alerts.subscribe(user.platform, user.chat_id, PRESENCE_TOPIC, key)
            self._subscribed.add(key)

    def _tell(self, user: ChatUser, performer_id: int, text: str) -> None:
        self._subscribe(user)
        self.alerts.publish(
            PRESENCE_TOPIC,
            text,
            {
                "chat": chat_key(user.platform, user.chat_id),
                "platform": user.platform,
                "user_id": user.user_id,
                "performer_id": performer_id,
            },
        )

    async def _on_lost(self, presence: Presence, error: RoomsError) -> None:
        self.api.record_failure(error)  # a timed-out ping never reached the client's record
        try:
            stored = self.records.get_presence(presence.performer_id, presence.owner)
        except RoomsInvalidRequest:
            stored = None
        self.records.delete_presence(presence.performer_id, presence.owner)
        if stored is None or self._closed:
            return
        pid = presence.performer_id
        self._tell(
            stored.user,
            pid,
            f"{stored.user.name}: your presence in performer {pid}'s room was lost: "
            f"{error.message} Use {self.prefix}room join {pid} to enter again.",
        )
