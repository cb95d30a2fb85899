"""Finding and importing plugins, and registering a module with pluggy.

Plugins come from three places: the bundled ``plugins/`` directory (installed as the package
``bot_plugins``), extra directories named in ``bot.plugin_dirs``, and installed packages that
declare the ``bot.plugins`` entry point. Reload needs to import a plugin afresh and, if the new
code fails, to put the old modules back: both are here, next to the import itself.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pluggy

from . import hookspecs
from .entry_points import entry_points
from .errors import BotError

if TYPE_CHECKING:
    import importlib.metadata

ENTRY_POINT_GROUP = "bot.plugins"
BUNDLED_PACKAGE = "bot_plugins"
DIRECTORY_PREFIX = "bot_ext_"
CORE_PLUGIN = "core"

log = logging.getLogger("bot.plugins")


@dataclass
class PluginInfo:
    """Where a plugin came from; enough to import it again on reload."""

    name: str
    source: str  # "core", "bundled", "directory" or "package"
    module_name: str
    path: Path | None = None
    entry_point: importlib.metadata.EntryPoint | None = None
    dist_version: str | None = None
    #: plugins of the same name found earlier that this one hides, as "SOURCE plugin at LOCATION"
    shadows: tuple[str, ...] = ()

    @property
    def origin(self) -> str:
        """``SOURCE plugin at LOCATION``: enough to tell two plugins of one name apart."""
        return f"{self.source} plugin at {self.location}"

    @property
    def location(self) -> str:
        """Where to look for the code: a path, or the package and its entry point."""
        if self.path is not None:
            return str(self.path)
        if self.entry_point is not None:
            dist = self.entry_point.dist.name if self.entry_point.dist else "?"
            return f"{dist}: {self.entry_point.value}"
        return self.module_name


def discover_plugins(
    extra_dirs: Iterable[Path] = (), failures: dict[str, str] | None = None
) -> dict[str, PluginInfo]:
    """Every plugin that could be enabled, by name; a missing directory goes to ``failures``.

    Later sources win: a directory plugin replaces a bundled one of the same name, and an
    installed package replaces both. That lets a deployment patch a bundled plugin, but it is
    never silent: the winner lists what it shadows (``bot plugins`` shows it) and a warning
    names both sources.
    """
    found: dict[str, PluginInfo] = {
        CORE_PLUGIN: PluginInfo(CORE_PLUGIN, "core", "bot.builtins"),
    }

    def add(info: PluginInfo) -> None:
        if info.name == CORE_PLUGIN:
            if failures is not None:
                failures[info.origin] = "a plugin cannot be named core; it was ignored"
            return
        earlier = found.get(info.name)
        if earlier is not None:
            info.shadows = (*earlier.shadows, earlier.origin)
            log.warning(
                "plugin %s: the %s shadows the %s; the %s one runs",
                info.name,
                info.origin,
                earlier.origin,
                info.source,
            )
        found[info.name] = info

    bundled = importlib.import_module(BUNDLED_PACKAGE)
    for base in bundled.__path__:
        for entry in sorted(Path(base).iterdir()):
            if (entry / "__init__.py").exists() and not entry.name.startswith(("_", ".")):
                add(PluginInfo(entry.name, "bundled", f"{BUNDLED_PACKAGE}.{entry.name}", entry))
    for d in extra_dirs:
        if not d.is_dir():
            if failures is not None:
                failures[str(d)] = f"plugin directory {d} does not exist"
            continue
        for entry in sorted(d.iterdir()):
            if entry.name.startswith(("_", ".")):
                continue
            if entry.is_dir() and (entry / "__init__.py").exists():
                add(PluginInfo(entry.name, "directory", f"{DIRECTORY_PREFIX}{entry.name}", entry))
            elif entry.suffix == ".py":
                add(PluginInfo(entry.stem, "directory", f"{DIRECTORY_PREFIX}{entry.stem}", entry))
    for ep in entry_points(ENTRY_POINT_GROUP):
        version = ep.dist.version if ep.dist else None
        add(PluginInfo(ep.name, "package", ep.module, None, ep, version))
    return found


def import_plugin(info: PluginInfo, *, fresh: bool = False) -> ModuleType:
    """Import a plugin's module; ``fresh`` drops cached modules and bytecode (reload)."""
    if fresh:
        for name, module in modules_of(info).items():
            _drop_bytecode(module)
            del sys.modules[name]
        if info.path is not None:
            for source in _sources(info.path):
                _drop_bytecode_file(source)
        importlib.invalidate_caches()
    if info.source == "package" and info.entry_point is not None:
        obj = info.entry_point.load()
        return obj if isinstance(obj, ModuleType) else sys.modules[obj.__module__]
    if info.source == "directory" and info.path is not None:
        return import_plugin_directory(info.path, info.module_name)
    return importlib.import_module(info.module_name)


def modules_of(info: PluginInfo) -> dict[str, ModuleType]:
    """The plugin's module and its submodules, as ``sys.modules`` holds them now."""
    prefix = info.module_name + "."
    return {
        m: mod
        for m, mod in list(sys.modules.items())
        if mod is not None and (m == info.module_name or m.startswith(prefix))
    }


def restore_modules(info: PluginInfo, saved: dict[str, ModuleType]) -> None:
    """Put back the modules a failed reload replaced (and drop ones it added).

    Only ``sys.modules`` and the attribute naming the plugin on a parent *outside* it (the
    ``bot_plugins`` package, say) are restored. The old modules' own attributes were never
    touched, since the new import bound its submodules to the new package; binding them again
    would overwrite a package global of the same name (``from .migrations import
    migrations`` makes ``migrations`` the migration set, not the module).
    """
    for name in modules_of(info):
        if name not in saved:
            del sys.modules[name]
    sys.modules.update(saved)
    root = saved.get(info.module_name)
    parent, _, child = info.module_name.rpartition(".")
    if root is not None and parent in sys.modules:
        setattr(sys.modules[parent], child, root)


def _suggest_hook(name: str) -> str:
    """``bot_comands (did you mean bot_commands?)``: a typo names the hook it meant."""
    specs = [n for n in dir(hookspecs) if n.startswith("bot_")]
    close = difflib.get_close_matches(name, specs, n=1, cutoff=0.6)
    return f"{name} (did you mean {close[0]}?)" if close else name


def hook_manager() -> pluggy.PluginManager:
    """A pluggy manager that knows the bot's hook specifications."""
    pm = pluggy.PluginManager("bot")
    pm.add_hookspecs(hookspecs)
    return pm


def register_module(pm: pluggy.PluginManager, name: str, module: ModuleType) -> list[str]:
    """Register ``module`` as plugin ``name`` and return the hooks it implements.

    The one place a plugin meets pluggy, so the live manager, reload's scratch check and
    ``bot plugins`` refuse the same mistakes with the same words: a hook with wrong
    arguments, or a function named like a hook that is not one. On refusal nothing stays
    registered.
    """
    if pm.has_plugin(name):
        pm.unregister(name=name)
    try:
        pm.register(module, name=name)
    except pluggy.PluginValidationError as exc:
        raise BotError(f"has a hook with wrong arguments: {exc}") from exc
    callers = pm.get_hookcallers(module) or []
    unknown = sorted(caller.name for caller in callers if caller.spec is None)
    if unknown:
        pm.unregister(name=name)
        raise BotError(f"implements unknown hook(s): {', '.join(map(_suggest_hook, unknown))}")
    return sorted(caller.name for caller in callers)


def import_plugin_directory(path: Path, module_name: str | None = None) -> ModuleType:
    """Import a plugin from a directory (or single file) the way ``bot.plugin_dirs`` does.

    The module is named ``bot_ext_<name>``; a package's own modules import relatively
    (``from .client import X``) and are then importable as ``bot_ext_<name>.client``, which is
    how a plugin directory's tests reach its client and simulator. Importing twice returns the
    cached module unless the path differs.
    """
    path = Path(path).resolve()
    name = module_name or DIRECTORY_PREFIX + (path.name if path.is_dir() else path.stem)
    origin = path / "__init__.py" if path.is_dir() else path
    cached = sys.modules.get(name)
    if cached is not None:
        if getattr(cached, "__file__", None) == str(origin):
            return cached
        # Another directory's plugin of the same name: none of its submodules may be reused.
        for stale in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[stale]
    if path.is_dir():
        spec = importlib.util.spec_from_file_location(
            name, origin, submodule_search_locations=[str(path)]
        )
    else:
        spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load plugin from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _sources(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return [p for p in path.rglob("*.py") if "__pycache__" not in p.parts]


def _drop_bytecode(module: ModuleType) -> None:
    file = getattr(module, "__file__", None)
    if file and file.endswith(".py"):
        _drop_bytecode_file(Path(file))


def _drop_bytecode_file(source: Path) -> None:
    """Remove a source file's cached bytecode so a reload compiles what is on disk now.

    Bytecode is checked against the source's mtime in whole seconds and its size, so an edit
    saved within the same second that keeps the size (``version = 1`` -> ``version = 2``)
    would otherwise import the stale code.
    """
    try:
        Path(importlib.util.cache_from_source(str(source))).unlink(missing_ok=True)
    except (OSError, NotImplementedError, ValueError):
        pass
