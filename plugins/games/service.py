"""What the games commands share beyond the protocol client.

The bot holds one session on the games API, so one connection joins a game for every chat
that follows it: a chat follows a game through an alert subscription (topic ``games.events``,
filter = the game id), and the connection stays joined while at least one chat follows. Those
subscriptions live in the core's store, so a restarted bot joins the same games again.

It also remembers game names (alerts and replies name games, the API's events carry only
ids), the last details seen (so an alert can say *what* changed), and the games the bot is an
admin of (updating and closing need game-level admin rights, asked for once).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from bot import NotConnected, ServiceError, UserError, metrics

from .alerts import TOPIC, EventBatcher
from .client import GamesClient
from .errors import GamesInputError, GamesNotConnected, GamesRefused
from .events import DetailsChanged, GameClosed, GameEvent, RejoinFailed
from .format import alert_text, game_label
from .models import Game, GameDetails, GameSummary, check_id

if TYPE_CHECKING:
    from bot import Context, PluginRuntime

    from .config import GamesConfig

log = logging.getLogger(__name__)

# A typed id shorter than this is never widened to a game whose id merely starts with it: a
# short prefix of a closed game's id could otherwise pick a different, open game.
MIN_PREFIX = 6
# Ids at least this long are taken as typed (a UUID has 36 characters).
FULL_ID = 36

Publish = Callable[[str, str, dict[str, Any]], int]


def register(plugin: PluginRuntime, service: GamesService) -> None:
    """Make ``service`` the plugin's state (``plugin.state``); it is cleared when it stops."""
    plugin.state = service


def service_of(ctx: Context) -> GamesService:
    """The running plugin's service; a clear message when the plugin is not running."""
    plugin = ctx.plugin
    service = plugin.state if plugin is not None else None
    if not isinstance(service, GamesService) or plugin is None or plugin.client is None:
        raise GamesNotConnected("The games plugin is not running right now.")
    return service


def service_for(plugin: PluginRuntime) -> GamesService | None:
    return plugin.state if isinstance(plugin.state, GamesService) else None


class GamesService:
    """The client plus the plugin's memory of games, followers and admin rights."""

    def __init__(
        self,
        client: GamesClient,
        config: GamesConfig,
        bot: Any,
        publish: Publish,
        *,
        source_id: str | None,
    ) -> None:
        self.client = client
        self.config = config
        self.bot = bot
        self.source_id = source_id
        self._publish = publish
        self.names: dict[str, str] = {}
        self.details: dict[str, GameDetails] = {}
        self.admin_of: set[str] = set()
        self.batcher = EventBatcher(config.alert_coalesce, self._deliver)
        self._remove_listener = client.add_listener(self.batcher.add)

    def close(self) -> None:
        self._remove_listener()
        self.batcher.close()

    # ------------------------------------------------------------ connection

    async def api(self) -> GamesClient:
        """The client, once its first connection attempt is over.

        Right after start-up (a piped console script sends its first line at once) a command
        waits for the connection, at most the call timeout, instead of failing; once the
        service is known to be down, calls fail at once with a clear message rather than
        making every user wait.
        """
        if not self.client.connected and self.client.starting:
            await self.client.wait_first_attempt()
        return metrics.timed_client("games", self.client)  # API calls timed

    async def warm_up(self) -> None:
        """Learn the names of the games followed before a restart, so alerts name them."""
        try:
            await self.client.wait_ready()
        except NotConnected:
            return
        # A game that could not be joined again is no longer in joined_games: skip it.
        for game_id in sorted(self.followed_games() & self.client.joined_games):
            if game_id in self.names:
                continue
            try:
                self.remember_details(await self.client.get_game(game_id))
            except ServiceError as exc:
                log.info("games: no details for followed game %s: %s", game_id, exc.message)

    # ------------------------------------------------------------ names and ids

    def label(self, game_id: str) -> str:
        return game_label(game_id, self.names.get(game_id))

    def remember_game(self, game: Game) -> None:
        if game.name:
            self.names[game.game_id] = game.name

    def remember_list(self, games: Iterable[GameSummary]) -> None:
        for game in games:
            if game.name:
                self.names[game.game_id] = game.name

    def remember_details(self, details: GameDetails) -> None:
        if details.name:
            self.names[details.game_id] = details.name
        self.details[details.game_id] = details

    async def describe(self, game_id: str) -> str:
        """The game's label, asking the API for its name if unknown (so a refusal such as an
        unknown game surfaces before anything else is done)."""
        if game_id not in self.names:
            self.remember_details(await (await self.api()).get_game(game_id))
        return self.label(game_id)

    async def best_label(self, game_id: str) -> str:
        """The game's label after a call that succeeded: its name if the API gives it, the
        short id otherwise (a failed look-up must not turn a success into an error)."""
        try:
            return await self.describe(game_id)
        except ServiceError:
            return self.label(game_id)

    async def resolve_id(self, typed: str, *, among: Iterable[str] = ()) -> str:
        """The game id a user means: as typed, or the one game whose id starts with it.

        Alerts show ids shortened, so a prefix is accepted; it is looked up first among
        ``among`` and the games already seen, then in the source's list of active games.
        """
        game_id = check_id(typed)
        if len(game_id) >= FULL_ID or len(game_id) < MIN_PREFIX:
            return game_id
        known = [*among, *self.names, *self.followed_games()]
        found = _by_prefix(game_id, known)
        if found is not None:
            return found
        try:
            games = await (await self.api()).list_games(self.source_id)
        except (ServiceError, GamesInputError):
            return game_id  # the call that follows reports the problem in its own words
        self.remember_list(games)
        return _by_prefix(game_id, [g.game_id for g in games]) or game_id

    # ------------------------------------------------------------ following games

    def followers(self, game_id: str) -> list[tuple[str, str]]:
        """(platform, chat id) of every chat following the game."""
        return [
            (sub.platform, sub.chat_id)
            for sub in self.bot.store.subscriptions(topic=TOPIC)
            if (sub.filter or "") == game_id
        ]

    def followed_games(self, platform: str | None = None, chat_id: str | None = None) -> set[str]:
        subs = self.bot.store.subscriptions(topic=TOPIC, platform=platform, chat_id=chat_id)
        return {sub.filter for sub in subs if sub.filter}

    async def follow(self, platform: str, chat_id: str, game_id: str) -> bool:
        """Join the game (once for all chats) and subscribe this chat; False if it already
        followed. Joining comes first, so a refused join leaves no subscription behind."""
        client = await self.api()
        if game_id not in client.joined_games:
            await client.join_game(game_id)
        if game_id not in self.details:
            try:
                self.remember_details(await client.get_game(game_id))
            except ServiceError as exc:
                log.info("games: joined %s but got no details: %s", game_id, exc.message)
        return bool(self.bot.alerts.subscribe(platform, chat_id, TOPIC, game_id))

    async def unfollow(self, platform: str, chat_id: str, game_id: str) -> tuple[bool, str]:
        """Unsubscribe this chat, and leave the game once no chat follows it.

        Returns (whether the chat followed it, a note if leaving failed): the chat's choice
        holds even when the API cannot be told right now.
        """
        removed = self.bot.alerts.unsubscribe(platform, chat_id, TOPIC, game_id) > 0
        note = ""
        if not self.followers(game_id) and game_id in self.client.joined_games:
            try:
                await self.client.leave_game(game_id)
            except ServiceError as exc:
                note = f" (The bot could not leave the game on the service: {exc.message})"
        return removed, note

    def _forget_game(self, game_id: str) -> None:
        for platform, chat_id in self.followers(game_id):
            self.bot.alerts.unsubscribe(platform, chat_id, TOPIC, game_id)
        self.admin_of.discard(game_id)
        self.details.pop(game_id, None)

    # ------------------------------------------------------------ admin rights

    async def ensure_admin(self, game_id: str) -> None:
        """Ask for game-level admin rights unless the bot already has them (a 645 refusal
        reaches the caller as :class:`AdminRefused`, with the API's reason)."""
        if game_id in self.admin_of:
            return
        await (await self.api()).become_admin(game_id)
        self.admin_of.add(game_id)

    def admin_call_refused(self, game_id: str, exc: ServiceError) -> None:
        """A refused admin call may mean the rights were lost (a server restart): ask again
        next time instead of trusting the memory."""
        if isinstance(exc, GamesRefused):
            self.admin_of.discard(game_id)

    # ------------------------------------------------------------ alerts

    def _deliver(self, game_id: str, events: list[GameEvent]) -> None:
        before = self.details.get(game_id)
        for event in events:
            if isinstance(event, DetailsChanged):
                self.remember_details(event.details)
        text = alert_text(self.label(game_id), events, before)
        data = {"game_id": game_id, "events": [type(e).__name__ for e in events]}
        self._publish(TOPIC, text, data)
        if any(isinstance(e, GameClosed | RejoinFailed) for e in events):
            self._forget_game(game_id)


def _by_prefix(typed: str, ids: Iterable[str]) -> str | None:
    """The id equal to ``typed``, else the only one starting with it; several is an error."""
    low = typed.lower()
    unique = list(dict.fromkeys(ids))
    exact = next((i for i in unique if i.lower() == low), None)
    if exact is not None:
        return exact
    found = [i for i in unique if i.lower().startswith(low)]
    if len(found) > 1:
        raise UserError(f"{typed} is the start of {len(found)} game ids; type more of it.")
    return found[0] if found else None
