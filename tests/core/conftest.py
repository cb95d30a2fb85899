"""Fixtures for the core's tests: plugins written to a temporary plugin directory."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Callable[..., Path]:
    """``plugin_dir(name=source, ...)`` writes single-file plugins and returns the directory."""
    directory = tmp_path / "plugins"
    directory.mkdir()

    def write(**sources: str) -> Path:
        for name, source in sources.items():
            (directory / f"{name}.py").write_text(textwrap.dedent(source))
        return directory

    return write
