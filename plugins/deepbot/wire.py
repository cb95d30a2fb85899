"""The websocket under the DeepBot connection: replies handed over where they arrive, and the
frames of one loop iteration written together.

Why not plain ``websockets``: a reply read through ``recv()`` costs an extra event-loop hop (the
library queues the frame, the reader task wakes, and only then does the waiting call wake), and
every ``send()`` is one ``write`` system call. With a hundred commands in flight that is a
hundred writes per loop iteration where one would do (issue 19 measured the command path at a
quarter of a bare pipelining client). :class:`WireConnection` keeps the library's protocol and
flow control and changes only those two things:

* **Replies**: a complete text frame is handed to ``on_text`` inside ``data_received``, unless
  an earlier message still waits in the library's queue (a fragmented or binary one, or one
  ``on_text`` declined): then it queues behind it, so the reader sees every message in the
  order the server sent it. ``on_text`` returns False to decline a frame (it then goes through
  ``recv()`` like any other).
* **Writes**: :meth:`send_text` hands the frame to the protocol at once. The first frame of a
  loop iteration is written at once (a lone command pays no delay); the frames that follow in
  the same iteration wait in the protocol's buffer and leave in one ``write`` when the loop
  turns. The protocol's buffer is the single queue, so pings, pongs and the close frame never
  overtake a frame sent before them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from websockets.asyncio.client import ClientConnection
from websockets.frames import Frame, Opcode
from websockets.protocol import Event, State
from websockets.typing import Data

log = logging.getLogger(__name__)

_DATA = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)


class WireConnection(ClientConnection):
    """A :class:`~websockets.asyncio.client.ClientConnection` with reply hand-over and write
    batching; pass it as ``connect(..., create_connection=WireConnection)``."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        #: Called with each complete text frame as it arrives; returns False to decline it.
        self.on_text: Callable[[str], bool] | None = None
        # Complete messages handed to the library's queue and not yet taken by the reader.
        self._queued = 0
        self._fragment = False  # a fragmented message is arriving (its frames go to the queue)
        self._window = False  # a frame was written in this loop iteration: batch the rest
        #: ``write`` calls made by :meth:`send_text` (for tests and the benchmark's notes).
        self.writes = 0

    # --- receiving -----------------------------------------------------------------------

    def process_event(self, event: Event) -> None:
        if not isinstance(event, Frame):  # the handshake's response
            super().process_event(event)
            return
        on_text = self.on_text
        if (
            on_text is not None
            and event.opcode is Opcode.TEXT
            and event.fin
            and not self._queued
            and not self._fragment
        ):
            try:
                text = bytes(event.data).decode()
            except UnicodeDecodeError:
                pass  # the library fails the connection (1007) when the reader takes it
            else:
                try:
                    if on_text(text):
                        return
                except Exception:  # never let a handler's bug break the transport
                    log.exception("A DeepBot frame handler failed")
                    return
        super().process_event(event)
        if event.opcode in _DATA:
            if event.fin:
                self._queued += 1
                self._fragment = False
            else:
                self._fragment = True

    async def recv(self, decode: bool | None = None) -> Data:  # type: ignore[override]
        """As the library's; counts the message as taken, so later frames may skip the
        queue again once it is empty."""
        message = await super().recv(decode)
        if self._queued:
            self._queued -= 1
        return message

    # --- sending -------------------------------------------------------------------------

    async def send_text(self, text: str) -> None:
        """Send ``text`` in one text frame, batched with the other frames of this loop
        iteration; raises :class:`~websockets.exceptions.ConnectionClosed` like ``send``."""
        if self.protocol.state is not State.OPEN:
            await self.send(text)  # raises ConnectionClosed the library's way
            return
        self.protocol.send_text(text.encode())
        if not self._window:
            self._window = True
            self.loop.call_soon(self._flush)
            self._write()
        if self.paused:  # the kernel's buffer is full: wait like ``send`` does
            await self.drain()

    def _flush(self) -> None:
        self._window = False
        self._write()

    def _write(self) -> None:
        data = self.protocol.data_to_send()
        if not data:
            return
        try:
            if all(data):
                self.transport.write(b"".join(data) if len(data) > 1 else data[0])
                self.writes += 1
            else:  # an empty chunk asks for a half-close: only the library knows how
                for chunk in data:
                    if chunk:
                        self.transport.write(chunk)
                    elif self.transport.can_write_eof():
                        self.transport.write_eof()
                    else:  # pragma: no cover - TLS cannot half-close
                        self.transport.close()
        except Exception as exc:  # as in data_received: the connection fails, calls see it
            self.set_connection_exc(exc)
            self.transport.abort()
