"""A small HTTP/1.1 server on asyncio streams, for the rooms simulator.

The project's declared dependencies have HTTP clients but no HTTP server, and the simulator
needs byte-level control anyway (garbled bodies, dropped connections, hangs), so this reads
requests itself: a request line, headers, and a body by Content-Length or chunked coding.
Keep-alive is honoured as HTTP/1.1 defines it. Limits on header and body size keep a broken
or hostile client from growing memory; anything malformed gets a 4xx and the connection closed.
"""

from __future__ import annotations

import asyncio
import logging
import re
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus

log = logging.getLogger(__name__)

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_REQUEST_LINE = re.compile(rb"([A-Z]+) (\S+) HTTP/(1\.[01])\r?\n")
MAX_HEADERS = 100


@dataclass(slots=True)
class HttpRequest:
    """One parsed request; header names are lower-case, repeated headers keep the last."""

    method: str
    target: str
    path: str
    query: dict[str, list[str]]
    version: str
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class HttpResponse:
    """What a handler answers; ``close`` ends the connection after sending."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    close: bool = False


Handler = Callable[[HttpRequest], Awaitable[HttpResponse | None]]
"""Returns a response, or None to drop the connection without answering."""


class _BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class HttpServer:
    """Serves ``handler`` on one host/port until :meth:`stop`."""

    def __init__(
        self,
        handler: Handler,
        *,
        max_header_bytes: int = 16 * 1024,
        max_body_bytes: int = 64 * 1024,
        idle_timeout: float = 30.0,
    ) -> None:
        self.handler = handler
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self.idle_timeout = idle_timeout
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.Task[None]] = {}  # outer -> inner

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Bind (port 0: any free port) and return the bound (host, port)."""
        self._server = await asyncio.start_server(
            self._serve, host, port, limit=self.max_header_bytes
        )
        bound = self._server.sockets[0].getsockname()
        return bound[0], bound[1]

    async def stop(self) -> None:
        """Stop accepting, cut every open connection, and wait until all are gone."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        while self._connections:
            connections = dict(self._connections)
            for inner in connections.values():
                inner.cancel()
            await asyncio.wait(connections.keys())
        await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # The work runs in an inner task so stop() can cancel it while this callback task
        # ends normally (asyncio's stream callback in 3.11 logs an error for a cancelled one).
        if self._server is None:  # accepted just as the server stopped
            writer.close()
            return
        outer = asyncio.current_task()
        assert outer is not None
        inner = asyncio.create_task(self._serve_requests(reader, writer))
        self._connections[outer] = inner
        try:
            await asyncio.wait([inner])
        finally:
            self._connections.pop(outer, None)
            if not inner.done():
                inner.cancel()
            writer.close()  # not awaiting wait_closed(): a peer that never reads must not block
        if not inner.cancelled():
            error = inner.exception()
            if error is not None and not isinstance(
                error, ConnectionError | asyncio.IncompleteReadError
            ):
                log.error("rooms simulator: connection failed", exc_info=error)

    async def _serve_requests(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            try:
                async with asyncio.timeout(self.idle_timeout):
                    request = await self._read_request(reader, writer)
            except _BadRequest as exc:
                body = f"{exc}\n".encode()
                writer.write(_serialize(HttpResponse(exc.status, body), keep_alive=False))
                await writer.drain()
                return
            except TimeoutError:
                return
            if request is None:
                return
            try:
                response = await self.handler(request)
            except Exception:
                log.exception("rooms simulator: handler failed")
                response = HttpResponse(500, b"internal error\n", close=True)
            if response is None:
                return
            keep_alive = _keep_alive(request) and not response.close
            writer.write(_serialize(response, keep_alive=keep_alive))
            await writer.drain()
            if not keep_alive:
                return

    async def _read_line(self, reader: asyncio.StreamReader) -> bytes:
        try:
            return await reader.readuntil(b"\n")
        except asyncio.LimitOverrunError:
            raise _BadRequest(431, "header line too long") from None
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                raise _BadRequest(400, "incomplete request") from None
            return b""

    async def _read_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> HttpRequest | None:
        line = await self._read_line(reader)
        if line in (b"\r\n", b"\n"):  # RFC 9112: ignore one empty line before a request
            line = await self._read_line(reader)
        if not line:
            return None
        match = _REQUEST_LINE.fullmatch(line)
        if match is None:
            raise _BadRequest(400, "malformed request line")
        method, target, version = (part.decode("ascii") for part in match.groups())
        headers = await self._read_headers(reader)
        body = await self._read_body(reader, writer, headers)
        parts = urllib.parse.urlsplit(target)
        query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        return HttpRequest(method, target, parts.path, query, version, headers, body)

    async def _read_headers(self, reader: asyncio.StreamReader) -> dict[str, str]:
        headers: dict[str, str] = {}
        total = 0
        for _ in range(MAX_HEADERS + 1):
            line = await self._read_line(reader)
            if not line:
                raise _BadRequest(400, "incomplete headers")
            if line in (b"\r\n", b"\n"):
                return headers
            total += len(line)
            if total > self.max_header_bytes:
                raise _BadRequest(431, "headers too large")
            name, sep, value = line.partition(b":")
            if not sep or not _TOKEN.fullmatch(name):
                raise _BadRequest(400, "malformed header")
            headers[name.decode("ascii").lower()] = value.strip().decode("latin-1")
        raise _BadRequest(431, "too many headers")

    async def _read_body(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        headers: dict[str, str],
    ) -> bytes:
        coding = headers.get("transfer-encoding")
        length = headers.get("content-length")
        if coding is not None and length is not None:
            raise _BadRequest(400, "both Content-Length and Transfer-Encoding")
        if coding is not None and coding.lower().split(",")[-1].strip() != "chunked":
            raise _BadRequest(501, "unsupported transfer coding")
        if coding is None and length is None:
            return b""
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
        if coding is not None:
            return await self._read_chunked(reader)
        assert length is not None
        if not length.isdigit() or len(length) > 12:
            raise _BadRequest(400, "bad Content-Length")
        size = int(length)
        if size > self.max_body_bytes:
            raise _BadRequest(413, "body too large")
        try:
            return await reader.readexactly(size)
        except asyncio.IncompleteReadError:
            raise _BadRequest(400, "incomplete body") from None

    async def _read_chunked(self, reader: asyncio.StreamReader) -> bytes:
        body = bytearray()
        while True:
            line = await self._read_line(reader)
            size_text = line.split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _BadRequest(400, "bad chunk size") from None
            if size < 0 or len(body) + size > self.max_body_bytes:
                raise _BadRequest(413, "body too large")
            if size == 0:
                break
            try:
                body += await reader.readexactly(size)
                crlf = await reader.readexactly(2)
            except asyncio.IncompleteReadError:
                raise _BadRequest(400, "incomplete chunk") from None
            if crlf != b"\r\n":
                raise _BadRequest(400, "chunk not followed by CRLF")
        while (line := await self._read_line(reader)) not in (b"\r\n", b"\n"):  # trailers
            if not line:
                raise _BadRequest(400, "incomplete trailers")
        return bytes(body)


def _keep_alive(request: HttpRequest) -> bool:
    tokens = {t.strip().lower() for t in request.headers.get("connection", "").split(",")}
    if request.version == "1.0":
        return "keep-alive" in tokens
    return "close" not in tokens


def _serialize(response: HttpResponse, *, keep_alive: bool) -> bytes:
    try:
        reason = HTTPStatus(response.status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [
        f"HTTP/1.1 {response.status} {reason}",
        f"Content-Type: {response.content_type}",
        f"Content-Length: {len(response.body)}",
        f"Connection: {'keep-alive' if keep_alive else 'close'}",
        "Server: rooms-simulator",
    ]
    lines += [f"{name}: {value}" for name, value in response.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body
