"""Typed requests and results of the games API, and the readers that build them from replies.

Readers are tolerant (the API mixes seconds and millis, numbers and strings, ``name`` and
``game_name``); only a missing game id makes a reply unusable, since nothing could be done with
it. Request checks are strict: they run before anything is sent, so bad input changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot import clip

from .errors import BadReply, GamesInputError
from .wire import parse_time, read_code, read_id

# Our own sanity limits: the doc sets none, but a chat user must not be able to send the API a
# megabyte of targets or a name it will choke on.
MAX_ID_LENGTH = 100
MAX_NAME_LENGTH = 200
MAX_ITEM_LENGTH = 100
MAX_ITEMS = 200

# Text from the API (names, statuses, pool names) is cut to this many characters when read, so
# a 100 KB user name cannot reach a chat; ids that are not plausible are dropped instead.
MAX_API_TEXT = 200


@dataclass(frozen=True, slots=True)
class Action:
    """Something that can happen in a game ("Goal"); ``action_id`` is the server's key."""

    action_id: str
    name: str


@dataclass(frozen=True, slots=True)
class Target:
    """One node of a game's target tree; ``path`` is the colon form ("argentina:1")."""

    target_id: str
    path: str
    symbol: str
    display_name: str
    children: tuple[Target, ...] = ()

    def walk(self) -> Iterator[Target]:
        """This node, then its descendants depth first (the order the server sent them)."""
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass(frozen=True, slots=True)
class TargetTree:
    """A game's nested targets, so "Argentina:1" is a child of "Argentina", not a flat string."""

    roots: tuple[Target, ...] = ()

    def __iter__(self) -> Iterator[Target]:
        return iter(self.roots)

    def __len__(self) -> int:
        return len(self.roots)

    def walk(self) -> Iterator[Target]:
        for root in self.roots:
            yield from root.walk()

    def paths(self) -> list[str]:
        return [target.path for target in self.walk()]

    def find(self, path: str) -> Target | None:
        """Look a target up by its colon path, case-insensitively ("Argentina:1")."""
        wanted = path.strip().lower()
        return next((t for t in self.walk() if t.path.lower() == wanted), None)


@dataclass(frozen=True, slots=True)
class PastEvent:
    """Something that happened in a game (an action on a target) at a time."""

    event_id: str
    happened_at: datetime | None
    target_id: str
    action_id: str


@dataclass(frozen=True, slots=True)
class Game:
    """A game as created or opened (res 340, 3401 or 3402)."""

    game_id: str
    name: str
    type: str
    source_id: str | None = None
    opened: bool = False
    actions: tuple[Action, ...] = ()
    targets: TargetTree = field(default_factory=TargetTree)
    currency: str | None = None
    hashtag: str | None = None
    open_at: datetime | None = None
    close_at: datetime | None = None
    live_start_at: datetime | None = None
    live_finish_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class GameDetails:
    """A game's full state (res 342), as fetched or as published after an update."""

    game_id: str
    name: str
    status: str
    type: str = ""
    actions: tuple[Action, ...] = ()
    targets: TargetTree = field(default_factory=TargetTree)
    past_events: tuple[PastEvent, ...] = ()
    currency: str | None = None
    hashtag: str | None = None
    open_at: datetime | None = None
    close_at: datetime | None = None
    live_start_at: datetime | None = None
    live_finish_at: datetime | None = None

    def recent_events(self, count: int) -> tuple[PastEvent, ...]:
        """The last ``count`` events, oldest first (events are kept in time order)."""
        return self.past_events[-count:] if count > 0 else ()


@dataclass(frozen=True, slots=True)
class GameSummary:
    """One entry of a source's list of active games (res 345)."""

    game_id: str
    name: str
    status: str
    type: str = ""
    open_at: datetime | None = None
    close_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PoolInfo:
    """A betting pool named by a 362/368 message; the doc gives no fields, so keep them all."""

    game_id: str
    pool_id: str | None = None
    name: str | None = None
    target_id: str | None = None
    action_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The best human name the message gave: its name, else its id, else "a pool"."""
        return self.name or self.pool_id or "a pool"


@dataclass(frozen=True, slots=True)
class CloseResult:
    """What a close request did: closed for good, or pools that must be resolved by hand first.

    The API only sends 341 once no manual pool is left; until then the request has to be
    re-sent after those pools are resolved.
    """

    game_id: str
    closed: bool
    resolved: tuple[PoolInfo, ...] = ()
    blocked: tuple[PoolInfo, ...] = ()

    @property
    def needs_manual_resolution(self) -> bool:
        return not self.closed and bool(self.blocked)


@dataclass(frozen=True, slots=True)
class OpCodes:
    """The API's own op and res code maps (op 2), name -> code."""

    ops: Mapping[str, int]
    res: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class NewGame:
    """What a create (3701) or create-and-open (370) request carries.

    Times are datetimes or epoch numbers (seconds or millis, told apart by size); ``None``
    leaves the server's default (now, or no automatic close, which the doc recommends).
    """

    name: str
    type: str
    actions: Sequence[str] = ()
    targets: Sequence[str] = ()
    currency: str | None = None
    hashtag: str | None = None
    open_at: datetime | int | float | None = None
    close_at: datetime | int | float | None = None
    live_start_at: datetime | int | float | None = None
    live_finish_at: datetime | int | float | None = None
    source_id: str | None = None


# ---------------------------------------------------------------- request checks


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def check_id(value: object, what: str = "game id") -> str:
    """A game or source id: one token, no spaces, of sane length."""
    if not isinstance(value, str) or not value.strip():
        raise GamesInputError(f"A {what} is needed.")
    text = value.strip()
    if len(text) > MAX_ID_LENGTH or any(ch.isspace() for ch in text) or _has_control(text):
        raise GamesInputError(f"That is not a valid {what}.")
    return text


def check_text(value: object, what: str, *, limit: int = MAX_NAME_LENGTH) -> str:
    """A free-text field (game name, type, currency, hashtag): non-empty, one line, bounded."""
    if not isinstance(value, str) or not value.strip():
        raise GamesInputError(f"The {what} must not be empty.")
    text = value.strip()
    if _has_control(text):
        raise GamesInputError(f"The {what} must be a single line of text.")
    if len(text) > limit:
        raise GamesInputError(f"The {what} is longer than {limit} characters.")
    return text


def check_names(items: Sequence[str] | str, what: str, *, nested: bool = False) -> list[str]:
    """An actions or targets list; a comma string is accepted and split like the API does.

    Commas inside a name are refused because the API also reads comma strings and would split
    it; for targets each ``:`` level must be non-empty ("Argentina::1" is a typo, not a level).
    """
    raw = items.split(",") if isinstance(items, str) else list(items)
    names: list[str] = []
    seen: set[str] = set()
    for item in raw:
        if not isinstance(item, str):
            raise GamesInputError(f"Each of the {what} must be text.")
        name = item.strip()
        if not name:
            if isinstance(items, str):
                continue
            raise GamesInputError(f"The {what} contain an empty name.")
        if "," in name or _has_control(name):
            raise GamesInputError(f"The {what} name {name[:40]!r} has a comma or line break.")
        if len(name) > MAX_ITEM_LENGTH:
            raise GamesInputError(f"A name in the {what} is longer than {MAX_ITEM_LENGTH}.")
        if nested:
            parts = [part.strip() for part in name.split(":")]
            if any(not part for part in parts):
                raise GamesInputError(f"The target {name!r} has an empty level around ':'.")
            name = ":".join(parts)
        if name.lower() not in seen:
            seen.add(name.lower())
            names.append(name)
    if len(names) > MAX_ITEMS:
        raise GamesInputError(f"At most {MAX_ITEMS} {what} can be sent at once.")
    return names


# ---------------------------------------------------------------- reply readers


def api_text(value: Any, limit: int = MAX_API_TEXT) -> str | None:
    """Text the API sent, as one clipped line (control characters blanked); None if empty or
    not a scalar."""
    if value is None or isinstance(value, dict | list | bool):
        return None
    text = clip(str(value).strip(), limit).replace("\n", " ").replace("\t", " ").strip()
    return text or None


def _opt_text(message: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        text = api_text(message.get(key))
        if text is not None:
            return text
    return None


def _key(value: Any) -> str:
    """A dictionary key from the API (an action or target id), bounded like any API text."""
    return api_text(value, MAX_ID_LENGTH) or "?"


def require_game_id(message: Mapping[str, Any]) -> str:
    game_id = read_id(message.get("game_id"))
    if game_id is None:
        raise BadReply("The games service answered without a game id.")
    return game_id


def read_actions(raw: Any) -> tuple[Action, ...]:
    """Actions come as {id: {"name": ...}}; a plain list of names is accepted too."""
    if isinstance(raw, Mapping):
        actions = []
        for key, value in raw.items():
            name = _opt_text(value, "name") if isinstance(value, Mapping) else api_text(value)
            actions.append(Action(action_id=_key(key), name=name or _key(key)))
        return tuple(actions)
    if isinstance(raw, list | tuple):
        names = [api_text(item) for item in raw]
        return tuple(Action(action_id=name.lower(), name=name) for name in names if name)
    return ()


def _read_target(key: str, raw: Any, parent: str) -> Target:
    path = f"{parent}:{key}" if parent else key
    if not isinstance(raw, Mapping):
        return Target(target_id=key, path=path, symbol=key, display_name=api_text(raw) or key)
    children = raw.get("targets")
    return Target(
        target_id=key,
        path=path,
        symbol=_opt_text(raw, "symbol") or key,
        display_name=_opt_text(raw, "display_name", "name") or key,
        children=_read_targets(children, path) if isinstance(children, Mapping) else (),
    )


def _read_targets(raw: Mapping[Any, Any], parent: str) -> tuple[Target, ...]:
    return tuple(_read_target(_key(key), value, parent) for key, value in raw.items())


def read_targets(raw: Any) -> TargetTree:
    """The nested target dictionary as a tree; a flat list of colon paths is accepted too."""
    if isinstance(raw, Mapping):
        return TargetTree(_read_targets(raw, ""))
    if isinstance(raw, list | tuple):
        nested: dict[str, Any] = {}
        for item in raw:
            level = nested
            for part in (api_text(item) or "").split(":"):
                if part.strip():
                    key = part.strip().lower()
                    node = level.setdefault(key, {"display_name": part.strip(), "targets": {}})
                    level = node["targets"]
        return TargetTree(_read_targets(nested, ""))
    return TargetTree()


def read_past_events(raw: Any) -> tuple[PastEvent, ...]:
    """Past events keyed by event id, returned oldest first (undated ones first)."""
    if not isinstance(raw, Mapping):
        return ()
    events = [
        PastEvent(
            event_id=_key(key),
            happened_at=parse_time(value.get("happened_at")),
            target_id=_opt_text(value, "target_id") or "",
            action_id=_opt_text(value, "action_id") or "",
        )
        for key, value in raw.items()
        if isinstance(value, Mapping)
    ]
    events.sort(key=lambda e: e.happened_at.timestamp() if e.happened_at else float("-inf"))
    return tuple(events)


def read_game(message: Mapping[str, Any], *, opened: bool) -> Game:
    return Game(
        game_id=require_game_id(message),
        name=_opt_text(message, "game_name", "name") or "",
        type=_opt_text(message, "type") or "",
        source_id=_opt_text(message, "source_id"),
        opened=opened,
        actions=read_actions(message.get("actions")),
        targets=read_targets(message.get("targets")),
        currency=_opt_text(message, "currency"),
        hashtag=_opt_text(message, "hashtag"),
        open_at=parse_time(message.get("open_at")),
        close_at=parse_time(message.get("close_at")),
        live_start_at=parse_time(message.get("live_start_at")),
        live_finish_at=parse_time(message.get("live_finish_at")),
    )


def read_details(message: Mapping[str, Any]) -> GameDetails:
    return GameDetails(
        game_id=require_game_id(message),
        name=_opt_text(message, "name", "game_name") or "",
        status=_opt_text(message, "status") or "unknown",
        type=_opt_text(message, "type") or "",
        actions=read_actions(message.get("actions")),
        targets=read_targets(message.get("targets")),
        past_events=read_past_events(message.get("past_events")),
        currency=_opt_text(message, "currency"),
        hashtag=_opt_text(message, "hashtag"),
        open_at=parse_time(message.get("open_at")),
        close_at=parse_time(message.get("close_at")),
        live_start_at=parse_time(message.get("live_start_at")),
        live_finish_at=parse_time(message.get("live_finish_at")),
    )


def read_game_list(message: Mapping[str, Any]) -> list[GameSummary]:
    """Games come keyed by id; a list of objects carrying ``game_id`` is accepted too."""
    raw = message.get("games")
    entries: list[tuple[str | None, Any]]
    if isinstance(raw, Mapping):
        entries = [(read_id(key), value) for key, value in raw.items()]
    elif isinstance(raw, list):
        entries = [
            (read_id(item.get("game_id")), item) for item in raw if isinstance(item, Mapping)
        ]
    else:
        entries = []
    games = []
    for game_id, value in entries:
        if not game_id or not isinstance(value, Mapping):
            continue
        games.append(
            GameSummary(
                game_id=game_id,
                name=_opt_text(value, "name", "game_name") or "",
                status=_opt_text(value, "status") or "unknown",
                type=_opt_text(value, "type") or "",
                open_at=parse_time(value.get("open_at")),
                close_at=parse_time(value.get("close_at")),
            )
        )
    return games


_POOL_KEYS = ("pool_id", "bet_pool_id", "id", "name", "pool_name", "title")
_POOL_SKIP = frozenset({"response_header", "res", "game_id", "target_id", "action_id"})


def read_pool(message: Mapping[str, Any]) -> PoolInfo:
    return PoolInfo(
        game_id=require_game_id(message),
        pool_id=_opt_text(message, "pool_id", "bet_pool_id", "id"),
        name=_opt_text(message, "name", "pool_name", "title"),
        target_id=_opt_text(message, "target_id"),
        action_id=_opt_text(message, "action_id"),
        extra={k: v for k, v in message.items() if k not in _POOL_SKIP and k not in _POOL_KEYS},
    )


def read_opcodes(message: Mapping[str, Any]) -> OpCodes:
    """The vendor's names are ``opcodes`` and ``response_codes`` (Instamrkt/slate); older
    spellings are read too. Entries that are not a name and a code are skipped."""

    def codes(*keys: str) -> dict[str, int]:
        for key in keys:
            raw = message.get(key)
            if isinstance(raw, Mapping):
                found = {}
                for name, code in raw.items():
                    number = read_code(code)
                    label = api_text(name, MAX_ID_LENGTH)
                    if number is not None and 0 <= number < 2**31 and label:
                        found[label] = number
                return found
        return {}

    return OpCodes(
        ops=codes("opcodes", "ops", "op_codes"),
        res=codes("response_codes", "res_codes", "responses"),
    )
