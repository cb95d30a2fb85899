"""The shape every bundled simulator shares.

A simulator is a real server for one outside API, speaking its documented wire protocol on a
real socket. Tests, benchmarks and the embedded default config use them; ``bot simulate NAME``
runs one on its own. Subclasses implement :meth:`start` and :meth:`stop` and set ``url``.
"""

from __future__ import annotations

import abc
from types import TracebackType
from typing import Self


class Simulator(abc.ABC):
    """A local server for one API; usable as ``async with Sim(...) as sim: sim.url``."""

    url: str = ""

    @abc.abstractmethod
    async def start(self) -> None:
        """Bind and start serving; sets ``self.url`` (port 0 means any free port)."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop serving and close every connection; safe to call twice."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
