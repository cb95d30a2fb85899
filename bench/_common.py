"""Shared bits of the benchmarks: percentiles and the report format.

Every figure is printed beside a floor measured in the same run on the same machine, because
absolute numbers on a shared 2-core machine drift by a third from run to run while same-run
ratios hold.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "support"))


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


def row(
    name: str,
    value: str,
    floor: str | None = None,
    ratio: float | None = None,
    target: str | None = None,
    ok: bool | None = None,
) -> None:
    """One line of a report: figure, floor, ratio, target, and whether the target holds."""
    parts = [f"{name:<44} {value:>16}"]
    if floor is not None:
        parts.append(f"floor {floor:>14}")
    if ratio is not None:
        parts.append(f"ratio {ratio:6.2f}x")
    if target is not None:
        parts.append(f"target {target}")
    if ok is not None:
        parts.append("OK" if ok else "MISS")
    print("  ".join(parts), flush=True)


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def rabbitmq_support():
    """tests/support/rabbitmq.py: the private broker the test suite uses."""
    import rabbitmq

    return rabbitmq
