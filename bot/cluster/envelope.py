"""Messages and their events as JSON for the broker (never pickle: any worker may read them)."""

from __future__ import annotations

import json
import uuid
import zlib
from typing import Any

from ..commands import UserRef
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


def encode_message(message: Message, reply_to: str) -> bytes:
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
    return json.dumps(body, separators=(",", ":")).encode()


def decode_message(data: bytes, responder: Responder) -> tuple[Message, str]:
    """The message and the queue its events go to; raises ValueError on a malformed body."""
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
        return message, str(body.get("reply_to", ""))
    except (KeyError, TypeError, IndexError, AttributeError, json.JSONDecodeError) as exc:
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
