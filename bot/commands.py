"""Commands declared once, from the handler's signature.

A plugin writes an ordinary async function; its name, help, arguments, their types and
descriptions are read from the signature and docstring, so the same declaration can be parsed
from console text, rendered as a Discord slash command with typed options, and listed in
Telegram's command menu. Nothing about a command is written twice.

Names may have several words (``"points add"``): commands from different plugins that share a
first word form one group (``link deepbot`` and ``link rooms``), and a group may itself be a
command (``points [user]`` beside ``points add <user> <n>``).
"""

from __future__ import annotations

import enum
import inspect
import re
import shlex
import types
import typing
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal, get_args, get_origin

from .errors import UsageError
from .store import Proof
from .text import clip


class Permission(enum.IntEnum):
    """Who may run a command. Ordered: each level includes the ones above it."""

    EVERYONE = 0
    #: the caller has a link for the command's service (``link <service> ...``)
    LINKED = 1
    ADMIN = 2
    OWNER = 3


class Rest(str):
    """Annotation for a greedy argument: it takes the rest of the line, spaces included."""


@dataclass(frozen=True)
class UserRef:
    """A chat user named in a command (a mention), as (platform, id) plus what was typed."""

    platform: str
    id: str | None
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Cooldown:
    """At most ``rate`` uses per ``per`` seconds for each (platform, user)."""

    rate: int
    per: float


@dataclass
class Param:
    """One argument of a command, as parsed from the handler's signature."""

    name: str
    kind: type | Any
    required: bool
    default: Any = None
    description: str = ""
    choices: tuple[str, ...] = ()
    greedy: bool = False
    flag: bool = False  # keyword-only bool: written as --name
    #: from ``Annotated[str, fn]``: ``async def fn(ctx: Context, current: str) -> list[str]``
    #: returns suggestions for what the user has typed so far (Discord shows them as choices)
    autocomplete: Callable[..., Awaitable[list[str]]] | None = None

    @property
    def type_name(self) -> str:
        if self.choices:
            return "choice"
        return {
            str: "text",
            int: "whole number",
            float: "number",
            Decimal: "number",
            bool: "yes/no",
            UserRef: "user",
        }.get(self.kind, "text")

    def usage(self) -> str:
        if self.flag:
            return f"[--{self.name}]"
        label = "|".join(self.choices) if self.choices else self.name
        if self.greedy:
            label += "..."
        return f"<{label}>" if self.required else f"[{label}]"


Handler = Callable[..., Awaitable[Any]]


@dataclass
class Command:
    """A declared command. Built by :func:`command`; the registry decides where it lives."""

    name: str
    handler: Handler
    help: str
    description: str
    params: list[Param]
    permission: Permission = Permission.EVERYONE
    aliases: tuple[str, ...] = ()
    cooldown: Cooldown | None = None
    hidden: bool = False
    #: the outside service whose link Permission.LINKED requires (defaults to the plugin name)
    service: str | None = None
    #: shown privately where the platform can (Discord ephemeral): links, balances
    private: bool = False
    #: acts on the linked account's value (spends points, sets credits): the caller's link
    #: for the service must be proven or approved, not only claimed (see bot/links.py)
    trusted_link: bool = False
    #: this is the plugin's link command, and what its flow proves (bot/links.py)
    link_proof: Proof | None = None
    #: set by the plugin manager: the plugin that declared it
    plugin: str = ""

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.name.split())

    def visible_to(self, *, is_owner: bool, is_admin: bool) -> bool:
        """Whether help and subcommand lists show this command to such a caller."""
        if self.hidden:
            return False
        if self.permission >= Permission.OWNER:
            return is_owner
        if self.permission >= Permission.ADMIN:
            return is_admin
        return True

    def usage(self, prefix: str = "!") -> str:
        return " ".join([prefix + self.name, *(p.usage() for p in self.params)])

    # ------------------------------------------------------------------ parsing

    def parse(
        self, text: str, *, platform: str = "", mentions: dict[str, UserRef] | None = None
    ) -> dict[str, Any]:
        """Turn the argument text into keyword arguments, or raise UsageError."""
        tokens = split_args(text)
        kwargs: dict[str, Any] = {}
        flags = {p.name: p for p in self.params if p.flag}
        positional = [p for p in self.params if not p.flag]
        rest_tokens: list[str] = []
        for tok in tokens:
            if tok.startswith("--") and tok[2:].replace("-", "_") in flags:
                kwargs[tok[2:].replace("-", "_")] = True
            else:
                rest_tokens.append(tok)
        i = 0
        for p in positional:
            if p.greedy:
                if i < len(rest_tokens):
                    kwargs[p.name] = _rest_of_line(text, rest_tokens, i, set(flags))
                    i = len(rest_tokens)
                break
            if i >= len(rest_tokens):
                break
            kwargs[p.name] = convert(p, rest_tokens[i], platform=platform, mentions=mentions)
            i += 1
        if i < len(rest_tokens):
            raise UsageError(f"too many arguments: {' '.join(rest_tokens[i:])!r}")
        return self.complete(kwargs)

    def complete(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Fill defaults and check required arguments; shared by text and structured input."""
        for p in self.params:
            if p.name not in kwargs:
                if p.required:
                    raise UsageError(f"missing <{p.name}>")
                kwargs[p.name] = p.default
        return kwargs


def split_args(text: str) -> list[str]:
    """Split like a shell (quotes group words), but tolerate a stray apostrophe ("Bob's")."""
    if '"' not in text and "'" not in text and "\\" not in text:
        return text.split()  # the common case, without shlex's per-character loop
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError:
        return text.split()


def _rest_of_line(text: str, tokens: list[str], start: int, flags: set[str]) -> str:
    """The greedy argument keeps the user's spacing when it was typed without quotes."""
    words = [t for t in tokens[start:]]
    if len(words) == 1:
        return words[0]
    raw = text.strip()
    for tok in tokens[:start]:
        idx = raw.find(tok)
        if idx < 0:
            return " ".join(words)
        raw = raw[idx + len(tok) :]
    for name in flags:
        raw = re.sub(rf"(^|\s)--{re.escape(name)}(?=\s|$)", " ", raw)
    raw = raw.strip()
    return raw if raw and '"' not in raw and "'" not in raw else " ".join(words)


_MENTION = re.compile(r"^<@!?(\d+)>$")
_TRUE = {"yes", "y", "true", "on", "1"}
_FALSE = {"no", "n", "false", "off", "0"}


#: The largest magnitude a number argument may have. No API the bot talks to takes more than a
#: 64-bit integer (most take an Int32), and an unbounded Decimal such as ``1e1000000`` raises
#: ``decimal.Overflow`` the moment a plugin rounds it: refused here, with a message, instead.
MAX_NUMBER = Decimal(10) ** 15
_MAX_NUMBER_CHARS = 40
# "1,000" read with a decimal comma would silently become 1: a comma followed by exactly three
# digits is refused rather than guessed, and so is any number with two separators.
_THOUSANDS = re.compile(r"^[+-]?\d{1,3},\d{3}$")


def _number(p: Param, raw: str) -> Decimal:
    """A finite, bounded Decimal from chat text: ``12.5`` and ``12,5`` (decimal comma) are both
    12.5; a thousands separator (``1,000``) is refused, never truncated; ``-0`` becomes ``0``."""
    text = raw.strip()
    if len(text) > _MAX_NUMBER_CHARS:
        raise UsageError(f"<{p.name}> is too long for a number")
    if _THOUSANDS.match(text) or text.count(",") + text.count(".") > 1:
        raise UsageError(
            f"<{p.name}> must be written without thousands separators, "
            f"for example 1000 or 12.5, not {raw!r}"
        )
    try:
        value = Decimal(text.replace(",", "."))
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite():
        raise UsageError(f"<{p.name}> must be a number, not {clip(raw, 40)!r}")
    if value.copy_abs() > MAX_NUMBER:  # copy_abs: abs() would round, and overflow
        raise UsageError(f"<{p.name}> is too large")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -8:
        raise UsageError(f"<{p.name}> has too many decimals")
    return value + 0  # -0 becomes 0


def convert(
    p: Param, raw: str, *, platform: str = "", mentions: dict[str, UserRef] | None = None
) -> Any:
    """Convert one token to the parameter's type with a message a chat user understands."""
    kind = p.kind
    if p.choices:
        low = raw.lower()
        matches = [c for c in p.choices if c.lower() == low]
        if not matches:
            raise UsageError(f"<{p.name}> must be one of {', '.join(p.choices)}, not {raw!r}")
        value: Any = matches[0]
        if isinstance(kind, type) and issubclass(kind, enum.Enum):
            return next(m for m in kind if str(m.value) == value or m.name == value)
        return value
    if kind is int:
        if len(raw) > _MAX_NUMBER_CHARS:
            raise UsageError(f"<{p.name}> is too long for a number")
        try:
            whole = int(raw.replace("_", ""), 10)
        except ValueError:
            raise UsageError(f"<{p.name}> must be a whole number, not {clip(raw, 40)!r}") from None
        if abs(whole) > MAX_NUMBER:
            raise UsageError(f"<{p.name}> is too large")
        return whole
    if kind in (float, Decimal):
        value = _number(p, raw)
        return float(value) if kind is float else value
    if kind is bool:
        low = raw.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise UsageError(f"<{p.name}> must be yes or no, not {raw!r}")
    if kind is UserRef:
        if mentions and raw in mentions:
            return mentions[raw]
        m = _MENTION.match(raw)
        if m:
            return UserRef(platform, m.group(1), raw)
        return UserRef(platform, None, raw.lstrip("@"))
    return raw


# --------------------------------------------------------------------------- declaration


def _docstring_parts(fn: Callable[..., Any]) -> tuple[str, str, dict[str, str]]:
    """Split a docstring into summary, longer description and ``Args:`` descriptions."""
    doc = inspect.getdoc(fn) or ""
    args: dict[str, str] = {}
    body: list[str] = []
    in_args = False
    current = ""
    indent = 0
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped.lower() in ("args:", "arguments:", "parameters:"):
            in_args = True
            continue
        if in_args:
            m = re.match(r"^\s{1,8}(\w+)\s*(?:\([^)]*\))?:\s*(.*)$", line)
            if m and (not current or len(line) - len(line.lstrip()) <= indent):
                current, indent = m.group(1), len(line) - len(line.lstrip())
                args[current] = m.group(2)
                continue
            if stripped and current and line.startswith((" ", "\t")):
                args[current] += " " + stripped
                continue
            in_args = False
            if not stripped:
                continue
        body.append(line)
    text = "\n".join(body).strip()
    summary, _, rest = text.partition("\n\n")
    return " ".join(summary.split()), rest.strip(), args


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(get_args(tp)) == 2:
            return args[0], True
    return tp, False


_SUPPORTED = (str, int, float, bool, Decimal, UserRef, Rest)


def _argument_hints(fn: Callable[..., Any], sig: inspect.Signature) -> dict[str, Any]:
    """Resolve annotations of the arguments after ``ctx`` only.

    ``ctx: Context`` is often imported under TYPE_CHECKING; resolving it would fail for no
    benefit, so it is skipped.
    """
    hints: dict[str, Any] = {}
    globalns = getattr(fn, "__globals__", {})
    for i, (name, sp) in enumerate(sig.parameters.items()):
        if i == 0 or sp.annotation is inspect.Parameter.empty:
            continue
        ann = sp.annotation
        if isinstance(ann, str):
            try:
                ann = eval(ann, globalns, {})
            except NameError as exc:
                raise TypeError(
                    f"{fn.__qualname__}: cannot resolve type of {name}: {exc}"
                ) from None
        hints[name] = ann
    return hints


def params_from_signature(fn: Callable[..., Any]) -> list[Param]:
    """Read the handler's parameters (after ``ctx``) into :class:`Param` objects."""
    sig = inspect.signature(fn)
    hints = _argument_hints(fn, sig)
    _, _, arg_docs = _docstring_parts(fn)
    params: list[Param] = []
    for i, (name, sp) in enumerate(sig.parameters.items()):
        if i == 0:
            continue  # ctx
        if sp.kind in (sp.VAR_POSITIONAL, sp.VAR_KEYWORD):
            raise TypeError(f"{fn.__qualname__}: *args/**kwargs cannot be command arguments")
        tp = hints.get(name, str)
        autocomplete = None
        if get_origin(tp) is Annotated:
            base, *extras = get_args(tp)
            for extra in extras:
                if callable(extra):
                    autocomplete = extra
            tp = base
        tp, optional = _unwrap_optional(tp)
        choices: tuple[str, ...] = ()
        greedy = False
        if get_origin(tp) is Literal:
            choices = tuple(str(a) for a in get_args(tp))
            kind: Any = str
        elif isinstance(tp, type) and issubclass(tp, enum.Enum):
            choices = tuple(str(m.value) for m in tp)
            kind = tp
        elif tp is Rest:
            greedy, kind = True, str
        elif tp in _SUPPORTED:
            kind = tp
        else:
            raise TypeError(f"{fn.__qualname__}: unsupported argument type {tp!r} for {name}")
        has_default = sp.default is not inspect.Parameter.empty
        flag = sp.kind == sp.KEYWORD_ONLY and kind is bool
        params.append(
            Param(
                name=name,
                kind=kind,
                required=not has_default and not optional and not flag,
                default=sp.default if has_default else (False if flag else None),
                description=arg_docs.get(name, ""),
                choices=choices,
                greedy=greedy,
                flag=flag,
                autocomplete=autocomplete,
            )
        )
    seen_optional = False
    for p in params:
        if p.flag:
            continue
        if p.required and seen_optional:
            raise TypeError(f"{fn.__qualname__}: required <{p.name}> follows an optional one")
        seen_optional = seen_optional or not p.required
    return params


def command(
    name: str | None = None,
    *,
    help: str | None = None,
    aliases: Sequence[str] = (),
    permission: Permission = Permission.EVERYONE,
    cooldown: Cooldown | tuple[int, float] | None = None,
    hidden: bool = False,
    service: str | None = None,
    private: bool = False,
    trusted_link: bool = False,
    link_proof: Proof | None = None,
) -> Callable[[Handler], Command]:
    """Declare a command from an async function ``(ctx, ...typed args) -> str | Reply | None``.

    ``name`` may have several words for a subcommand (``"points add"``); by default it is the
    function's name. Help comes from ``help`` or the docstring's first paragraph, argument
    descriptions from its ``Args:`` section. ``trusted_link=True`` marks a command that acts
    on the caller's linked account (it needs a proven or approved link); ``link_proof`` marks
    the plugin's link command and says what its flow proves.
    """

    def wrap(fn: Handler) -> Command:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"{fn.__qualname__}: a command handler must be `async def`")
        summary, description, _ = _docstring_parts(fn)
        cd = Cooldown(*cooldown) if isinstance(cooldown, tuple) else cooldown
        cmd_name = " ".join((name or fn.__name__.rstrip("_")).lower().split())
        return Command(
            name=cmd_name,
            handler=fn,
            help=help or summary or cmd_name,
            description=description,
            params=params_from_signature(fn),
            permission=permission,
            aliases=tuple(a.lower() for a in aliases),
            cooldown=cd,
            hidden=hidden,
            service=service,
            private=private,
            trusted_link=trusted_link,
            link_proof=Proof(link_proof) if link_proof is not None else None,
        )

    return wrap


# --------------------------------------------------------------------------- registry


@dataclass
class Node:
    """A word in the command tree; it may run a command, lead to subcommands, or both."""

    word: str
    command: Command | None = None
    children: dict[str, Node] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)

    def child(self, word: str) -> Node | None:
        word = word.lower()
        node = self.children.get(word)
        if node is None and word in self.aliases:
            node = self.children.get(self.aliases[word])
        return node


class Registry:
    """All commands of all running plugins, as a tree of words."""

    def __init__(self) -> None:
        self.root = Node("")
        self.commands: list[Command] = []

    def add(self, cmd: Command) -> None:
        node = self.root
        *parents, last = cmd.path
        for word in parents:
            node = node.children.setdefault(word, Node(word))
        existing = node.children.get(last)
        if existing and existing.command is not None:
            raise ValueError(
                f"command {cmd.name!r} of plugin {cmd.plugin!r} is already declared by "
                f"plugin {existing.command.plugin!r}"
            )
        target = node.children.setdefault(last, Node(last))
        target.command = cmd
        for alias in cmd.aliases:
            node.aliases[alias] = last
        self.commands.append(cmd)

    def remove_plugin(self, plugin: str) -> None:
        """Drop every command of a plugin (on disable and reload); empty groups vanish."""
        keep = [c for c in self.commands if c.plugin != plugin]
        self.root = Node("")
        self.commands = []
        for c in keep:
            self.add(c)

    def resolve(self, text: str) -> tuple[Command | None, str, list[str]]:
        """Find the longest command path at the start of ``text``.

        Returns (command, the remaining argument text, the words matched).
        """
        node = self.root
        matched: list[str] = []
        rest = text
        best: tuple[Command | None, str, list[str]] = (None, text, [])
        while True:
            stripped = rest.lstrip()
            if not stripped:
                break
            word, _, after = stripped.partition(" ")
            word_clean = word.split("\n")[0]
            nxt = node.child(word_clean)
            if nxt is None:
                break
            node = nxt
            matched.append(nxt.word)
            rest = after if word_clean == word else stripped[len(word_clean) :]
            if node.command is not None:
                best = (node.command, rest, list(matched))
            elif not node.children:
                break
        if best[0] is None and matched:
            return None, rest, matched
        return best

    def group_children(self, path: Sequence[str]) -> list[Command]:
        node = self.root
        for word in path:
            nxt = node.child(word)
            if nxt is None:
                return []
            node = nxt
        out: list[Command] = []
        stack = list(node.children.values())
        while stack:
            n = stack.pop()
            if n.command:
                out.append(n.command)
            stack.extend(n.children.values())
        return sorted(out, key=lambda c: c.name)

    def names(self) -> list[str]:
        names: list[str] = []
        for c in self.commands:
            names.append(c.name)
            head = " ".join(c.path[:-1])
            names.extend(f"{head} {a}".strip() for a in c.aliases)
        return names

    def find(self, name: str) -> Command | None:
        cmd, rest, _ = self.resolve(name)
        return cmd if cmd and not rest.strip() else None


class Cooldowns:
    """Per-user use times of commands with a cooldown; one per bot, so restarts forget them."""

    def __init__(self) -> None:
        self._uses: dict[tuple[str, str, str], list[float]] = {}

    def check(self, cmd: Command, platform: str, user_id: str, now: float) -> float:
        """Record a use; return 0, or the seconds to wait if the user is over the limit."""
        if cmd.cooldown is None:
            return 0.0
        key = (cmd.name, platform, user_id)
        uses = [t for t in self._uses.get(key, ()) if now - t < cmd.cooldown.per]
        if len(uses) >= cmd.cooldown.rate:
            self._uses[key] = uses
            return cmd.cooldown.per - (now - uses[0])
        uses.append(now)
        self._uses[key] = uses
        return 0.0
