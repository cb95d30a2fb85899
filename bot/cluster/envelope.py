"""Messages and their events as JSON for the broker (never pickle: any worker may read them)."""

from __future__ import annotations

import enum
import json
import uuid
import zlib
from typing import Any, NamedTuple

from ..commands import Command, Rest, UserRef, convert
from ..errors import UsageError
from ..messages import Message, Responder

#: what a gateway learns about a command while it runs; a batch carries several in order
REPLY, ASKED, DONE, BATCH = "reply", "asked", "done", "batch"
#: a yes/no question for the gateway to ask with the platform's buttons, and its answer
CONFIRM, CONFIRMED = "confirm", "confirmed"


def new_id(platform: str) -> str:
    """An id for a message whose platform gave none (the console)."""
    return f"{platform}:{uuid.uuid4().hex}"


def partition_of(platform: str, chat_id: str, partitions: int) -> int:
    """The ingress partition of a chat: stable across processes and restarts."""
    return zlib.crc32(f"{platform}:{chat_id}".encode()) % partitions


class Incoming(NamedTuple):
    """A message as a worker receives it."""

    message: Message
    #: the queue its replies and end go to
    reply_to: str
    #: a structured command (a slash command): its name and its arguments as sent
    slash: tuple[str, dict[str, Any]] | None = None


def encode_message(
    message: Message, reply_to: str, slash: tuple[Command, dict[str, Any]] | None = None
) -> bytes:
    body = {
        "id": message.id,
        "platform": message.platform,
        "chat_id": message.chat_id,
        "user_id": message.user_id,
        "user_name": message.user_name,
        "text": message.text,
        "chat_kind": message.chat_kind,
        "platform_admin": message.platform_admin,
        "mentions": {k: [u.platform, u.id, u.name] for k, u in message.mentions.items()},
        "extra": _jsonable(message.extra),
        "reply_to": reply_to,
    }
    if slash is not None:
        body["slash"] = {"command": slash[0].name, "args": encode_args(slash[0], slash[1])}
    return json.dumps(body, separators=(",", ":")).encode()


def encode_args(cmd: Command, kwargs: dict[str, Any]) -> dict[str, Any]:
    """A structured command's arguments, each as the token its converter reads back.

    Values were converted on the gateway; the worker converts the tokens again with the same
    converter (so a choice, a number, a yes/no mean the same), and a picked user travels as
    its platform id, never as a name to be looked up.
    """
    out: dict[str, Any] = {}
    for p in cmd.params:
        value = kwargs.get(p.name)
        if value is None:
            continue
        if isinstance(value, UserRef):
            out[p.name] = {"user": [value.platform, value.id, value.name]}
        elif isinstance(value, bool):
            out[p.name] = {"text": "yes" if value else "no"}
        elif isinstance(value, enum.Enum):
            out[p.name] = {"text": str(value.value)}
        elif isinstance(value, float):
            out[p.name] = {"text": repr(value)}
        else:
            out[p.name] = {"text": str(value)}
    return out


def decode_args(cmd: Command, args: dict[str, Any], platform: str) -> dict[str, Any]:
    """The handler's arguments from :func:`encode_args`; UsageError as for typed text."""
    params = {p.name: p for p in cmd.params}
    kwargs: dict[str, Any] = {}
    for name, sent in args.items():
        param = params.get(name)
        if param is None or not isinstance(sent, dict):
            raise UsageError(f"this command has no option {name!r}")
        if "user" in sent and param.kind is UserRef:
            plat, uid, uname = sent["user"]
            kwargs[name] = UserRef(str(plat), None if uid is None else str(uid), str(uname))
        elif param.flag or param.kind is bool:
            kwargs[name] = convert(param, str(sent.get("text", "")), platform=platform)
        elif param.greedy or (param.kind in (str, Rest) and not param.choices):
            kwargs[name] = str(sent.get("text", ""))
        else:
            kwargs[name] = convert(param, str(sent.get("text", "")), platform=platform)
    return kwargs


def decode_message(data: bytes, responder: Responder) -> Incoming:
    """The message, the queue its events go to and its structured command if it is one;
    raises ValueError on a malformed body."""
    try:
        body = json.loads(data)
        mentions = {
            str(k): UserRef(str(v[0]), None if v[1] is None else str(v[1]), str(v[2]))
            for k, v in dict(body.get("mentions") or {}).items()
        }
        message = Message(
            platform=str(body["platform"]),
            chat_id=str(body["chat_id"]),
            user_id=str(body["user_id"]),
            user_name=str(body.get("user_name", "")),
            text=str(body["text"]),
            responder=responder,
            chat_kind=str(body.get("chat_kind", "private")),
            platform_admin=bool(body.get("platform_admin", False)),
            mentions=mentions,
            extra=dict(body.get("extra") or {}),
            id=str(body["id"]),
        )
        slash = body.get("slash")
        structured = None
        if slash is not None:
            structured = (str(slash["command"]), dict(slash.get("args") or {}))
        return Incoming(message, str(body.get("reply_to", "")), structured)
    except (
        KeyError,
        TypeError,
        IndexError,
        AttributeError,
        ValueError,
        json.JSONDecodeError,
    ) as exc:
        raise ValueError(f"malformed message envelope: {type(exc).__name__}") from None


def encode_event(kind: str, command_id: str, seq: int = 0, **fields: Any) -> bytes:
    return json.dumps({"kind": kind, "id": command_id, "seq": seq, **fields}).encode()


def decode_event(data: bytes) -> dict[str, Any]:
    try:
        event = json.loads(data)
    except json.JSONDecodeError:
        raise ValueError("malformed event") from None
    if not isinstance(event, dict) or "kind" not in event or "id" not in event:
        raise ValueError("malformed event")
    return event


def _jsonable(extra: dict[str, Any]) -> dict[str, Any]:
    """Transport extras that survive JSON (role ids, names); objects stay behind."""
    out: dict[str, Any] = {}
    for key, value in extra.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        out[str(key)] = value
    return out
