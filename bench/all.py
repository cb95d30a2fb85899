"""Every benchmark, one table. `python bench/all.py [--rounds 5] [--only NAME ...]`

Runs each benchmark in its own process (so one's imports, brokers and caches do not bill the
next), collects the figures it writes with ``--json``, and prints one table: figure, median
ratio (or value, where a figure has no floor), spread of the rounds, target, OK/MISS. Each
benchmark's own output goes to standard error, so the table alone can be piped into a file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import arguments, machine

HERE = Path(__file__).resolve().parent

#: name -> extra arguments; the order runs the cheap ones first.
BENCHMARKS: dict[str, list[str]] = {
    "startup": [],
    "store": [],
    "command_path": [],
    "chatwars_rpc": [],
    "alerts": [],
    "cluster": [],
}


def run(name: str, extra: list[str], rounds: int, out: Path) -> tuple[dict | None, float, int]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            str(HERE / f"{name}.py"),
            "--rounds",
            str(rounds),
            "--json",
            str(out),
            *extra,
        ],
        stdout=sys.stderr,
        stderr=sys.stderr,
        check=False,
    )
    elapsed = time.perf_counter() - t0
    data = json.loads(out.read_text()) if proc.returncode == 0 and out.exists() else None
    return data, elapsed, proc.returncode


def main() -> int:
    parser = arguments(__doc__)
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), help="run only these")
    args = parser.parse_args()
    names = args.only or list(BENCHMARKS)
    header = machine()
    results: dict[str, tuple[dict | None, float, int]] = {}
    with tempfile.TemporaryDirectory() as d:
        for name in names:
            print(f"--- {name}", file=sys.stderr, flush=True)
            results[name] = run(name, BENCHMARKS[name], args.rounds, Path(d) / f"{name}.json")

    print(header)
    print(f"{args.rounds} interleaved rounds each; ratio = path / floor, median of the rounds")
    print()
    print("| benchmark | figure | median | spread | target | |")
    print("| --- | --- | --- | --- | --- | --- |")
    failed = 0
    for name, (data, elapsed, code) in results.items():
        if data is None:
            failed += 1
            print(f"| {name} | (failed, exit {code}, after {elapsed:.0f} s) | | | | FAIL |")
            continue
        for f in data["figures"]:
            verdict = "" if f["ok"] is None else ("OK" if f["ok"] else "MISS")
            print(
                f"| {name} | {f['name']} | {f['median_text']} | {f['spread_text']} | "
                f"{f['target']} | {verdict} |"
            )
        for c in data["checks"]:
            print(f"| {name} | {c['name']} | {c['value']} | | | {'OK' if c['ok'] else 'MISS'} |")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
