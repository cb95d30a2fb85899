"""What plugin authors copy imports only the public surface: ``from bot import ...``.

The example plugin and the scaffold's templates are where authors learn their imports, so a
``from bot.errors import ...`` there spreads into every plugin written from them, and ties
those plugins to the framework's module layout. Tests may also use the harness module,
``bot.testing`` (a pytest plugin, kept out of ``bot`` so a running bot never imports pytest).
The list of checked places is meant to grow (``plugins/`` next).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import bot

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "bot" / "templates"
#: (directory, glob) of the files authors copy from
CHECKED = [
    (REPO / "examples", "**/*.py"),
    (REPO / "tests" / "examples", "*.py"),
    (TEMPLATES, "**/*.tmpl"),
]
#: an import statement naming a module (template headers start with ``#import``)
TEMPLATE_IMPORT = re.compile(r"^(?:#import(?:\[\w+\])?\s+)?\s*(?:from|import)\s+([\w.]+)")


def _is_test(path: Path) -> bool:
    return "tests" in path.relative_to(REPO).parts


def _modules(path: Path) -> list[tuple[int, str]]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".py":
        found = []
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((node.lineno, node.module))
            elif isinstance(node, ast.Import):
                found += [(node.lineno, alias.name) for alias in node.names]
        return found
    return [
        (number, m.group(1))
        for number, line in enumerate(text.splitlines(), 1)
        if (m := TEMPLATE_IMPORT.match(line))
    ]


#: tests of the docs themselves, which no author copies
NOT_COPIED = {REPO / "tests" / "examples" / "test_tutorial.py"}


def _files() -> list[Path]:
    found = (p for base, pattern in CHECKED for p in base.glob(pattern))
    return sorted(p for p in found if p not in NOT_COPIED)


@pytest.mark.parametrize("path", _files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_copied_code_imports_the_framework_only_from_bot(path: Path) -> None:
    allowed = {"bot", "bot.testing"} if _is_test(path) else {"bot"}
    wrong = [
        f"{path.relative_to(REPO)}:{line}: {module}"
        for line, module in _modules(path)
        if (module == "bot" or module.startswith("bot.")) and module not in allowed
    ]
    assert wrong == [], "import these from bot instead (add to bot.__all__ if missing)"


def test_the_checked_places_are_not_empty() -> None:
    files = _files()
    assert any(p.suffix == ".tmpl" for p in files)
    assert any(p.parent.name == "parcels" for p in files)


def test_every_public_name_exists_and_says_what_it_is() -> None:
    for name in bot.__all__:
        value = getattr(bot, name)
        assert (getattr(value, "__doc__", None) or "").strip(), f"bot.{name} has no docstring"
