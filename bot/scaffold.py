"""``bot new-plugin NAME``: a new plugin whose tests pass before its author writes a line.

The generated plugin has every part a plugin of this framework has (commands, a protocol
client with a typed request, a simulator on a real socket, a config model, a migration set,
tests on the harness), so an author replaces working code instead of filling in blanks, and
the tests keep telling them whether it still works.

Three layouts, one set of templates (``bot/templates/plugin``):

- ``bundled``: ``plugins/NAME/`` in this repository (imported as ``bot_plugins.NAME``; its
  migration set in ``migrations/NAME.py``, as the repository's convention wants);
- ``directory``: ``plugins/NAME/`` anywhere else, loaded through ``bot.plugin_dirs``;
- ``package``: ``bot-NAME/``, an installable package with the ``bot.plugins`` entry point.

Templates hold plain text with ``{{name}}``-style placeholders (no template engine needed).
Their imports are declared in ``#import`` header lines and laid out here into sections the
way ruff's isort rules want them, because where a module's imports belong (first-party or
third-party) depends on the layout: in this repository ``bot`` is first-party, and in a package
the package itself is. That keeps the generated code clean under ruff in every layout.
"""

from __future__ import annotations

import keyword
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import BotError
from .plugin_loading import BUNDLED_PACKAGE, DIRECTORY_PREFIX, discover_plugins

#: longer names would push generated lines past the 100-column limit
MAX_NAME_LENGTH = 20
LINE_LENGTH = 100
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_RESERVED = {"core", "bot", "test", "tests", "plugins"}


class ScaffoldError(BotError):
    """The plugin cannot be generated as asked; nothing was written."""


@dataclass(frozen=True)
class GeneratedFile:
    path: Path
    text: str


@dataclass(frozen=True)
class Layout:
    """Where each generated file goes and how the plugin is imported, for one layout."""

    kind: str  # "bundled", "directory" or "package"
    name: str
    plugin_dir: Path
    tests_dir: Path
    migrations_path: Path
    module: str  # how tests import the plugin
    migrations_module: str  # how the plugin imports its migration set
    root: Path | None = None  # the package's own directory

    @property
    def first_party(self) -> frozenset[str]:
        """Top-level modules ruff's isort counts as first-party where the files will live."""
        if self.kind == "bundled":  # this repository's known-first-party
            return frozenset({"bot", BUNDLED_PACKAGE, "bot_migrations"})
        if self.kind == "package":  # the generated pyproject's, plus its own src/ package
            return frozenset({"bot", self.module})
        return frozenset({"bot"})


def check_name(name: str) -> str:
    """A plugin name is a short lower-case identifier: it names a module and commands."""
    if not _NAME.match(name):
        raise ScaffoldError(
            f"{name!r} is not a valid plugin name: use lower-case letters, digits and "
            "underscores, starting with a letter (like 'weather' or 'my_api')"
        )
    if len(name) > MAX_NAME_LENGTH:
        raise ScaffoldError(f"a plugin name has at most {MAX_NAME_LENGTH} characters")
    if keyword.iskeyword(name) or name in _RESERVED or name in sys.stdlib_module_names:
        raise ScaffoldError(f"{name!r} is reserved; choose another plugin name")
    return name


def _bundled_dir() -> Path | None:
    try:
        import bot_plugins
    except ImportError:
        return None
    return Path(next(iter(bot_plugins.__path__))).resolve()


def layout_for(name: str, directory: Path, *, package: bool = False) -> Layout:
    directory = directory.resolve()
    if package:
        root = directory / f"bot-{name.replace('_', '-')}"
        module = f"bot_{name}"
        plugin_dir = root / "src" / module
        return Layout(
            "package",
            name,
            plugin_dir,
            root / "tests",
            plugin_dir / "migrations.py",
            module,
            ".migrations",
            root,
        )
    plugin_dir = directory / "plugins" / name
    tests_dir = directory / "tests" / "plugins" / name
    if (directory / "plugins").resolve() == _bundled_dir():
        return Layout(
            "bundled",
            name,
            plugin_dir,
            tests_dir,
            directory / "migrations" / f"{name}.py",
            f"{BUNDLED_PACKAGE}.{name}",
            f"bot_migrations.{name}",
        )
    return Layout(
        "directory",
        name,
        plugin_dir,
        tests_dir,
        plugin_dir / "migrations.py",
        f"{DIRECTORY_PREFIX}{name}",
        ".migrations",
    )


def _values(layout: Layout) -> dict[str, str]:
    name = layout.name
    words = [w for w in name.split("_") if w]
    values = {
        "name": name,
        "Class": "".join(w.capitalize() for w in words),
        "title": " ".join(w.capitalize() for w in words),
        "ENV": name.upper(),
        "module": layout.module,
        "migrations_module": layout.migrations_module,
        "package": layout.module,
        "dist": f"bot-{name.replace('_', '-')}",
        "bot_config": "{}",
        "bot_config_note": {
            "bundled": "bundled plugins are found without settings",
            "package": "installed packages are found through their entry point",
            "directory": "the plugin directory must be listed",
        }[layout.kind],
    }
    if layout.kind == "directory":
        values["bot_config"] = '{"bot": {"plugin_dirs": PLUGIN_DIRS}}'
    return values


# --------------------------------------------------------------------------- rendering


def _substitute(text: str, values: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        key = m.group(1)
        if key not in values:
            raise ScaffoldError(f"template placeholder {{{{{key}}}}} has no value")
        return values[key]

    return _PLACEHOLDER.sub(sub, text)


def _section(module: str, first_party: frozenset[str]) -> int:
    if module == "__future__":
        return 0
    if module.startswith("."):
        return 4
    top = module.split(".")[0]
    if top in sys.stdlib_module_names:
        return 1
    if top in first_party:
        return 3
    return 2


def _member_key(name: str) -> tuple[int, str, str]:
    """isort's order-by-type: CONSTANTS, then Classes, then functions and variables."""
    if len(name) > 1 and name.isupper():
        kind = 0
    elif name[:1].isupper():
        kind = 1
    else:
        kind = 2
    return kind, name.lower(), name


def _format_from(module: str, names: list[str], suffix: str = "") -> str:
    names = sorted(set(names), key=_member_key)
    line = f"from {module} import {', '.join(names)}{suffix}"
    if len(line) <= LINE_LENGTH:
        return line
    inner = "".join(f"    {n},\n" for n in names)
    return f"from {module} import ({suffix}\n{inner})"


def render_imports(statements: list[str], first_party: frozenset[str], suffix: str = "") -> str:
    """Lay out import statements in sections, sorted the way ruff's isort rules check them."""
    sections: dict[int, tuple[list[str], dict[str, list[str]]]] = {}
    for statement in statements:
        if statement.startswith("import "):
            module = statement[len("import ") :].strip()
            plain, _ = sections.setdefault(_section(module, first_party), ([], {}))
            plain.append(module)
            continue
        m = re.match(r"^from\s+(\S+)\s+import\s+(.+)$", statement)
        if m is None:
            raise ScaffoldError(f"cannot read the template import {statement!r}")
        module = m.group(1)
        _, froms = sections.setdefault(_section(module, first_party), ([], {}))
        froms.setdefault(module, []).extend(n.strip() for n in m.group(2).split(","))
    blocks = []
    for key in sorted(sections):
        plain, froms = sections[key]
        lines = [f"import {mod}{suffix}" for mod in sorted(set(plain), key=str.lower)]
        if key == 4:
            ordered = sorted(froms, key=lambda mod: (-(len(mod) - len(mod.lstrip("."))), mod))
        else:
            ordered = sorted(froms, key=str.lower)
        lines += [_format_from(mod, froms[mod], suffix) for mod in ordered]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def render_template(template: str, layout: Layout) -> str:
    """Fill placeholders, then build the import block from the ``#import`` header lines."""
    values = _values(layout)
    # {{imports}} and {{locate_plugin}} are filled below, once the header has been read.
    wants_locate = "{{locate_plugin}}" in template
    protected = template.replace("{{imports}}", "\0imports\0")
    protected = protected.replace("{{locate_plugin}}", "\0locate\0")
    text = _substitute(protected, values)
    header: list[str] = []
    body_lines = text.splitlines()
    while body_lines and body_lines[0].startswith("#import"):
        line = body_lines.pop(0)
        m = re.match(r"^#import(?:\[(\w+)\])?\s+(.*)$", line)
        if m is None:
            raise ScaffoldError(f"bad template header line {line!r}")
        if m.group(1) is None or m.group(1) == layout.kind:
            header.append(m.group(2).strip())
    body = "\n".join(body_lines) + "\n"
    late = [s for s in header if layout.kind == "directory" and _imports_plugin(s, layout)]
    early = [s for s in header if s not in late]
    locate = ""
    if wants_locate and layout.kind == "directory":
        locate = (
            "\n\n#: This plugin lives in a plugin directory (``bot.plugin_dirs``), not in an "
            "installed\n#: package: import it the way the bot does, so that its modules can "
            f"be imported\n#: as {layout.module}.*\n"
            'PLUGIN_DIRS = [str(Path(__file__).resolve().parents[3] / "plugins")]\n'
            f'import_plugin_directory(Path(PLUGIN_DIRS[0]) / "{layout.name}")\n\n'
            + render_imports(late, layout.first_party, "  # noqa: E402")
        )
    elif late:
        early += late
    body = body.replace("\0imports\0", render_imports(early, layout.first_party), 1)
    return body.replace("\0locate\0", locate, 1)


def _imports_plugin(statement: str, layout: Layout) -> bool:
    m = re.match(r"^(?:from|import)\s+(\S+)", statement)
    return bool(m) and (m.group(1) == layout.module or m.group(1).startswith(layout.module + "."))


def _template(relative: str) -> str:
    return (
        resources.files("bot")
        .joinpath("templates", "plugin", *relative.split("/"))
        .read_text(encoding="utf-8")
    )


def _render(relative: str, layout: Layout) -> str:
    return render_template(_template(relative), layout)


def plan_plugin(name: str, directory: Path, *, package: bool = False) -> list[GeneratedFile]:
    """Every file the plugin needs, rendered but not written (so nothing is half-created)."""
    return plan_files(layout_for(check_name(name), Path(directory), package=package))


def plan_files(layout: Layout) -> list[GeneratedFile]:
    """The files of one layout (tests use it to render the bundled layout elsewhere)."""
    p, t, name = layout.plugin_dir, layout.tests_dir, layout.name
    files = [
        GeneratedFile(p / "__init__.py", _render("plugin/__init__.py.tmpl", layout)),
        GeneratedFile(p / "client.py", _render("plugin/client.py.tmpl", layout)),
        GeneratedFile(p / "simulator.py", _render("plugin/simulator.py.tmpl", layout)),
        GeneratedFile(p / "config.py", _render("plugin/config.py.tmpl", layout)),
        GeneratedFile(layout.migrations_path, _render("plugin/migrations.py.tmpl", layout)),
        GeneratedFile(t / "conftest.py", _render("tests/conftest.py.tmpl", layout)),
        GeneratedFile(t / f"test_{name}_client.py", _render("tests/test_client.py.tmpl", layout)),
        GeneratedFile(
            t / f"test_{name}_commands.py", _render("tests/test_commands.py.tmpl", layout)
        ),
    ]
    if layout.root is not None:
        files += [
            GeneratedFile(
                layout.root / "pyproject.toml", _render("package/pyproject.toml.tmpl", layout)
            ),
            GeneratedFile(layout.root / "README.md", _render("package/README.md.tmpl", layout)),
        ]
    return files


def check_free(layout: Layout, plugin_dirs: Iterable[Path] = ()) -> None:
    """Refuse a name another plugin on the plugin path already has.

    A second plugin of one name would shadow the first (or be shadowed by it) and its tests
    would import the wrong one. In this repository the tutorial's ``examples/`` directory is
    on the path too: ``bot new-plugin parcels`` here would collide with ``examples/parcels``.
    """
    dirs = [Path(d) for d in plugin_dirs]
    if layout.kind == "bundled" and (bundled := _bundled_dir()) is not None:
        dirs.append(bundled.parent / "examples")
    found = discover_plugins([d for d in dirs if d.is_dir()]).get(layout.name)
    if found is None or found.path == layout.plugin_dir:
        return
    raise ScaffoldError(
        f"a plugin named {layout.name!r} already exists ({found.origin}); a second one would "
        "shadow it or be shadowed, so choose another name"
    )


def create_plugin(
    name: str, directory: Path, *, package: bool = False, plugin_dirs: Iterable[Path] = ()
) -> list[Path]:
    """Write a new plugin under ``directory``; refuses to overwrite any existing file.

    ``plugin_dirs`` are the ``bot.plugin_dirs`` of the bot it is for: a name found there (or
    among the bundled and installed plugins) is refused.
    """
    files = plan_plugin(name, directory, package=package)
    check_free(layout_for(name, Path(directory), package=package), plugin_dirs)
    existing = [f.path for f in files if f.path.exists()]
    if existing:
        raise ScaffoldError(
            "these files already exist, so nothing was written: "
            + ", ".join(str(p) for p in existing)
        )
    layout = layout_for(name, Path(directory), package=package)
    if layout.plugin_dir.exists():
        raise ScaffoldError(f"{layout.plugin_dir} already exists, so nothing was written")
    for f in files:
        f.path.parent.mkdir(parents=True, exist_ok=True)
        f.path.write_text(f.text, encoding="utf-8")
    return [f.path for f in files]


def _framework_source() -> str:
    """Where this framework was installed from, when that is a checkout pip can install."""
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").exists() and (checkout / "bot" / "cli.py").exists():
        return f", or install it there first: pip install -e {checkout}"
    return ""


def next_steps(name: str, directory: Path, *, package: bool = False) -> str:
    """What to do after generating, printed by the CLI."""
    layout = layout_for(name, Path(directory), package=package)
    if layout.kind == "package":
        return (
            f"cd {layout.root} && pip install -e '.[test]' && pytest\n"
            f"(it depends on chatbot-framework: run that in the environment the framework is "
            f"installed in{_framework_source()})\n"
            f"then enable it with a `plugins: {{{name}: {{simulate: true}}}}` config section"
        )
    tests = layout.tests_dir
    if layout.kind == "bundled":
        return (
            f"pytest {tests}\n"
            f"then enable it with a `plugins: {{{name}: {{simulate: true}}}}` config section"
        )
    return (
        f"pytest {tests}\n"
        f"then add {layout.plugin_dir.parent} to bot.plugin_dirs and enable it with a "
        f"`plugins: {{{name}: {{simulate: true}}}}` config section"
    )
