"""Entry points of installed packages, without importing ``importlib.metadata`` for nothing.

Why it stands apart: start-up asks twice whether an entry-point group is declared, for
sqlite-utils' plugins (:mod:`bot.store`) and for the bot's own (:mod:`bot.plugin_loading`),
and nearly always the answer is no. ``importlib.metadata`` costs about 15 ms to import (it
pulls in ``email``, ``zipfile``, ``csv``) and each ``entry_points(group=...)`` call parses
every installed distribution's metadata again (3-12 ms for 50 packages). A group can only be
declared as a ``[group]`` line in some distribution's ``entry_points.txt``, so one pass that
lists the ``*.dist-info``/``*.egg-info`` directories on ``sys.path`` and reads those files
finds every declared group in about a millisecond. Only a group that is declared somewhere
is then looked up with ``importlib.metadata``, so what :func:`entry_points` returns is
exactly what ``importlib.metadata.entry_points(group=...)`` returns.

Nothing is cached between calls: a package installed while the process runs (a test writes
a ``.dist-info`` into ``sys.path``) is seen by the next call, as it is by importlib.
"""

from __future__ import annotations

import os
import sys
from importlib.machinery import PathFinder
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

_INFO_SUFFIXES = (".dist-info", ".egg-info")


def declared_groups() -> frozenset[str] | None:
    """Every entry-point group some distribution on ``sys.path`` declares.

    None when the answer cannot be read from directories alone: a ``sys.path`` entry is a
    zip file, or a finder other than the standard one supplies distributions. Callers then
    ask ``importlib.metadata``.
    """
    for finder in sys.meta_path:
        if finder is not PathFinder and hasattr(finder, "find_distributions"):
            return None
    groups: set[str] = set()
    for entry in sys.path:
        root = entry or "."
        try:
            children = os.listdir(root)
        except NotADirectoryError:
            return None  # a zip on sys.path: importlib reads distributions inside it
        except OSError:
            continue  # importlib skips an entry it cannot list, too
        infos = [c for c in children if c.lower().endswith(_INFO_SUFFIXES)]
        if os.path.basename(root).lower().endswith(".egg"):
            infos += [c for c in children if c.lower() == "egg-info"]
        for info in infos:
            groups |= _groups_in(os.path.join(root, info, "entry_points.txt"))
    return frozenset(groups)


def _groups_in(path: str) -> set[str]:
    """The ``[group]`` section names of one ``entry_points.txt`` (empty if there is none)."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line.strip() for line in f.read().splitlines()]
    except (OSError, UnicodeDecodeError):
        return set()
    # importlib.metadata's own reading (``Sectioned.read``), so both agree on every header
    return {ln.strip("[]") for ln in lines if ln.startswith("[") and ln.endswith("]")}


def entry_points(group: str) -> list[EntryPoint]:
    """``importlib.metadata.entry_points(group=group)``, free when no package declares it."""
    groups = declared_groups()
    if groups is not None and group not in groups:
        return []
    import importlib.metadata

    return list(importlib.metadata.entry_points(group=group))
