"""Test-wide set-up: the shared test servers in tests/support are importable everywhere.

``import fake_discord``, ``import fake_telegram`` and ``import rabbitmq`` work from any test;
their fixtures live in tests/support/conftest.py for the fakes' own tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

SUPPORT = Path(__file__).resolve().parent / "support"
if str(SUPPORT) not in sys.path:
    sys.path.insert(0, str(SUPPORT))
