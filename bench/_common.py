"""Shared bits of the benchmarks: the round method, percentiles and the report format.

Why rounds: absolute numbers on a shared 2-core machine drift by a third from run to run, and
even a ratio taken once (floor, then path) moves by as much when a neighbour wakes up in the
middle. So every benchmark measures its floor and its path in *interleaved rounds* (floor,
path, floor, path, ...), takes the ratio of each round, and reports the **median ratio with its
spread** (the smallest and largest round). A target holds when the median does; the spread
says how far to trust it. The first line names the machine and its load when the run began.

Each benchmark accepts ``--rounds N`` (default 5) and ``--json FILE`` (its figures as JSON, which
``bench/all.py`` collects into one table).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "support"))

DEFAULT_ROUNDS = 5


def pct(samples: list[float], p: float) -> float:
    """The p-th percentile (0-100) of samples, by nearest rank."""
    if not samples:
        return float("nan")
    s = sorted(samples)
    k = max(0, min(len(s) - 1, round(p / 100 * (len(s) - 1))))
    return s[k]


def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f} µs"


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.2f} ms"


def per_second(value: float) -> str:
    return f"{value:,.0f}/s"


def mib(value: float) -> str:
    return f"{value:.1f} MiB"


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def machine() -> str:
    """One line a reader needs to judge the figures: cores, load when the run began, Python."""
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"machine: {os.cpu_count()} cores, load average {load} at start, "
        f"Python {platform.python_version()}, {platform.machine()}"
    )


def arguments(doc: str | None) -> argparse.ArgumentParser:
    """The parser every benchmark starts from: ``--rounds`` and ``--json``."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument(
        "--rounds",
        type=int,
        default=DEFAULT_ROUNDS,
        help=f"interleaved floor/path rounds (default {DEFAULT_ROUNDS}, at least 1)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    return parser


@dataclass
class Figure:
    """One measured figure across rounds.

    With a floor, each round's ratio is ``value / floor`` and ``target`` bounds the median ratio;
    without one (``floor`` never given), ``target`` bounds the median value itself.
    ``higher_is_better`` says which side of the target is OK.
    """

    name: str
    fmt: Callable[[float], str]
    target: float | None = None
    higher_is_better: bool = False
    floor_label: str = ""
    values: list[float] = field(default_factory=list)
    floors: list[float] = field(default_factory=list)

    def add(self, value: float, floor: float | None = None) -> None:
        self.values.append(value)
        if floor is not None:
            self.floors.append(floor)

    @property
    def has_floor(self) -> bool:
        return bool(self.floors)

    @property
    def ratios(self) -> list[float]:
        return [v / f for v, f in zip(self.values, self.floors, strict=True) if f]

    @property
    def measure(self) -> list[float]:
        """What the target is compared with: the ratios, or the values without a floor."""
        return self.ratios if self.has_floor else self.values

    @property
    def median(self) -> float:
        return median(self.measure) if self.measure else float("nan")

    @property
    def spread(self) -> tuple[float, float]:
        m = self.measure
        return (min(m), max(m)) if m else (float("nan"), float("nan"))

    @property
    def ok(self) -> bool | None:
        if self.target is None:
            return None
        if self.higher_is_better:
            return self.median >= self.target
        return self.median <= self.target

    def target_text(self) -> str:
        if self.target is None:
            return ""
        op = ">=" if self.higher_is_better else "<="
        return f"{op} {self.target:g}x" if self.has_floor else f"{op} {self.fmt(self.target)}"

    def as_dict(self) -> dict[str, Any]:
        lo, hi = self.spread
        return {
            "name": self.name,
            "median_value": self.fmt(median(self.values)) if self.values else "",
            "median_floor": self.fmt(median(self.floors)) if self.floors else "",
            "floor_label": self.floor_label,
            "ratio": self.has_floor,
            "median": self.median,
            "spread": [lo, hi],
            "spread_text": self.spread_text(),
            "median_text": self.median_text(),
            "target": self.target_text(),
            "ok": self.ok,
            "rounds": len(self.values),
        }

    def median_text(self) -> str:
        return f"{self.median:.2f}x" if self.has_floor else self.fmt(self.median)

    def spread_text(self) -> str:
        lo, hi = self.spread
        if self.has_floor:
            return f"{lo:.2f}–{hi:.2f}x"
        return f"{self.fmt(lo)}–{self.fmt(hi)}"


@dataclass
class Check:
    """A count that must hold in every round (errors, lost messages): the worst round shows."""

    name: str
    value: str
    ok: bool


class Report:
    """The figures of one benchmark; prints its table and writes ``--json``."""

    def __init__(self, title: str, args: argparse.Namespace) -> None:
        if args.rounds < 1:
            raise SystemExit("--rounds must be at least 1")
        self.title = title
        self.rounds: int = args.rounds
        self.json_path: Path | None = args.json
        self.figures: dict[str, Figure] = {}
        self.checks: dict[str, Check] = {}
        self.notes: list[str] = []
        self.machine = machine()
        print(self.machine, flush=True)
        print(f"{title}: {self.rounds} interleaved rounds (floor, path, ...)", flush=True)

    def figure(
        self,
        name: str,
        fmt: Callable[[float], str],
        target: float | None = None,
        *,
        higher_is_better: bool = False,
        floor_label: str = "",
    ) -> Figure:
        """The figure called ``name``, created on first use."""
        if name not in self.figures:
            self.figures[name] = Figure(name, fmt, target, higher_is_better, floor_label)
        return self.figures[name]

    def check(self, name: str, value: object, ok: bool) -> None:
        """Record a count that must hold; a failing round replaces an earlier passing one."""
        previous = self.checks.get(name)
        if previous is None or (previous.ok and not ok):
            self.checks[name] = Check(name, str(value), ok)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def finish(self) -> None:
        """Print the table (median, median floor, median ratio, spread, target, OK/MISS)."""
        print(
            f"{'figure':<44} {'median':>14} {'floor':>14} {'ratio/value':>12} "
            f"{'spread':>22}  target"
        )
        for f in self.figures.values():
            d = f.as_dict()
            verdict = "" if f.ok is None else ("OK" if f.ok else "MISS")
            print(
                f"{f.name:<44} {d['median_value']:>14} {d['median_floor']:>14} "
                f"{f.median_text() if f.has_floor else '':>12} {f.spread_text():>22}  "
                f"{f.target_text()} {verdict}".rstrip(),
                flush=True,
            )
        for c in self.checks.values():
            print(f"{c.name:<44} {c.value:>14}  {'OK' if c.ok else 'MISS'}", flush=True)
        for n in self.notes:
            print(f"  {n}")
        if self.json_path is not None:
            self.json_path.write_text(
                json.dumps(
                    {
                        "title": self.title,
                        "machine": self.machine,
                        "rounds": self.rounds,
                        "figures": [f.as_dict() for f in self.figures.values()],
                        "checks": [vars(c) for c in self.checks.values()],
                        "notes": self.notes,
                    },
                    indent=1,
                )
            )


def rabbitmq_support():
    """tests/support/rabbitmq.py: the private broker the test suite uses."""
    import rabbitmq

    return rabbitmq
