"""Test-wide set-up: the shared test servers in tests/support are importable everywhere.

``import fake_discord``, ``import fake_telegram`` and ``import rabbitmq`` work from any test;
their fixtures live in tests/support/conftest.py for the fakes' own tests. The session's
private RabbitMQ broker (``rabbitmq_broker``) is here: ChatWars and the cluster share it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SUPPORT = Path(__file__).resolve().parent / "support"
if str(SUPPORT) not in sys.path:
    sys.path.insert(0, str(SUPPORT))


@pytest.fixture(scope="session")
def rabbitmq_broker() -> Iterator[Any]:
    """The session's private broker (tests/support/rabbitmq.py), started on first use."""
    import rabbitmq

    if rabbitmq.find_rabbitmq_bin() is None:
        pytest.skip("rabbitmq-server is not installed (apt-get install rabbitmq-server)")
    with rabbitmq.running_broker() as broker:
        yield broker
