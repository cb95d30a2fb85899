"""The ``bot`` command line: run, check-config, migrate, plugins, simulate, new-plugin,
backup, restore."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import LoadedConfig, Settings, load_config
from .errors import BotError, ConfigError
from .logs import FORMATS, setup_logging

if TYPE_CHECKING:
    from .app import Bot
    from .plugins import PluginDescription

log = logging.getLogger("bot")


def _load(path: str) -> LoadedConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"configuration error:\n{exc}", file=sys.stderr)
        raise SystemExit(2) from None


# --------------------------------------------------------------------------- run


async def _run(config: LoadedConfig, role: str = "all") -> int:
    from .app import Bot
    from .store import StoreError

    clustered = config.settings.bot.cluster.enabled
    if role != "all" and not clustered:
        print(f"--role {role} needs bot.cluster.amqp_url in the config", file=sys.stderr)
        return 2
    # With a cluster configured, --role all runs a gateway and a worker in this one process.
    roles = ["gateway", "worker"] if clustered and role == "all" else [role]
    try:
        bots = [Bot(config, role=r, serve_ops=i == 0) for i, r in enumerate(roles)]
    except StoreError as exc:
        print(f"cannot open the database: {exc}", file=sys.stderr)
        return 2
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stopped.set)
    # Workers first: a gateway's first command then finds a worker waiting for it.
    order = sorted(bots, key=lambda b: b.role != "worker")
    started: list[Bot] = []
    try:
        for bot in order:
            started.append(bot)
            await bot.start()
    except Exception as exc:
        if not isinstance(exc, (BotError, OSError)) and type(exc).__name__ != "ClusterError":
            raise
        print(f"cannot start: {exc}", file=sys.stderr)
        for bot in reversed(started):
            await bot.stop()
        return 2
    standing_by = any(getattr(b.cluster, "_leases", None) for b in bots)  # Telegram's
    if role != "worker" and not standing_by and not any(b.transports for b in bots):
        print("no transport is enabled; enable one under transports:", file=sys.stderr)
        for bot in reversed(started):
            await bot.stop()
        return 2
    waits = [asyncio.ensure_future(b.wait_stopped()) for b in bots]
    waits.append(asyncio.ensure_future(stopped.wait()))
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
        # The gateway first (no new commands), then the workers finish what they hold.
        for bot in sorted(bots, key=lambda b: b.role != "gateway"):
            await bot.stop()
    return max(b.exit_code for b in bots)


def cmd_run(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if getattr(args, "shards", None):
        discord = config.settings.transports.discord
        try:
            ids = _shard_list(args.shards)
        except ValueError:
            print("--shards takes shard numbers like 0-3 or 0,2,4", file=sys.stderr)
            return 2
        count = discord.shard_count
        if count is None or any(not 0 <= i < count for i in ids):
            print(
                "--shards needs transports.discord.shard_count, and numbers below it",
                file=sys.stderr,
            )
            return 2
        # Slash commands are the bot's, not a shard's: only the gateway with shard 0 syncs.
        config.settings.transports.discord = discord.model_copy(
            update={"shard_ids": ids, "sync_commands": discord.sync_commands and 0 in ids}
        )
    return asyncio.run(_run(config, getattr(args, "role", "all")))


def _shard_list(text: str) -> list[int]:
    """``0-3`` or ``0,2,4`` (or both: ``0-1,4``) -> the shard numbers, each once."""
    ids: list[int] = []
    for part in text.split(","):
        a, _, b = part.strip().partition("-")
        lo, hi = int(a), int(b or a)
        if hi < lo:
            raise ValueError(part)
        ids += [i for i in range(lo, hi + 1) if i not in ids]
    return ids


def _offline_bot(config: LoadedConfig) -> Bot:
    """A bot for inspecting plugins: no transports, and a throwaway in-memory store, so
    checking a config never creates a database or a key file; no metrics listener either
    (the running bot holds ``bot.metrics.listen``)."""
    from .app import Bot
    from .store import Store

    store = Store(":memory:", key=b"0" * 43 + b"=")
    return Bot(config, store=store, transports=[], serve_ops=False)


# --------------------------------------------------------------------------- check-config


async def _check_plugins(config: LoadedConfig) -> list[str]:
    """Import each configured plugin and validate its section, without starting anything."""

    problems: list[str] = []
    bot = _offline_bot(config)
    try:
        extra = [config.base_dir / d for d in config.settings.bot.plugin_dirs]
        bot.plugins.discover(extra)
        for name, section in config.settings.plugins.items():
            if name not in bot.plugins.available:
                problems.append(f"plugins.{name}: no plugin named {name!r} is installed")
                continue
            if section.get("enabled", True) is False:
                continue
            try:
                await bot.plugins.load(bot.plugins.available[name])
            except ConfigError as exc:
                problems.append(str(exc))
            except BotError as exc:
                problems.append(f"plugins.{name}: {exc}")
        problems += [f"plugin dir: {r}" for n, r in bot.plugins.failures.items()]
    finally:
        bot.store.close()
    return problems


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args.file)
    problems = asyncio.run(_check_plugins(config))
    if problems:
        print("configuration error:\n" + "\n".join(problems), file=sys.stderr)
        return 2
    print(f"{args.file}: configuration is valid")
    return 0


# --------------------------------------------------------------------------- migrate


async def _migrate(config: LoadedConfig) -> list[str]:
    from .app import Bot

    bot = Bot(config, transports=[])
    try:
        applied = bot.store.migrate(bot.migrations())
        bot.plugins.discover([config.base_dir / d for d in config.settings.bot.plugin_dirs])
        for name, section in config.settings.plugins.items():
            if section.get("enabled", True) is False or name not in bot.plugins.available:
                continue
            await bot.plugins.load(bot.plugins.available[name])
            sets = await bot.plugins.call(name, "bot_migrations")
            if sets is not None:
                applied += bot.store.migrate(sets if isinstance(sets, list) else [sets])
    finally:
        bot.store.close()
    return applied


def cmd_migrate(args: argparse.Namespace) -> int:
    config = _load(args.config)
    try:
        applied = asyncio.run(_migrate(config))
    except BotError as exc:
        print(f"cannot migrate: {exc}", file=sys.stderr)
        return 2
    print("\n".join(f"applied {a}" for a in applied) or "database is up to date")
    return 0


# --------------------------------------------------------------------------- plugins


async def _describe_plugins(
    config: LoadedConfig, *, health: bool = False, wait: float = 1.0
) -> list[PluginDescription]:
    """Every plugin with its version, source, hooks, commands and state.

    Without ``health`` nothing is started: each plugin is imported, its declarations read and
    its config section validated. With ``health`` the configured plugins are started (no
    transports, a throw-away database) and asked for their health after ``wait`` seconds,
    which is how to see whether a plugin can reach its API from this machine.
    """

    bot = _offline_bot(config)
    extra = [config.base_dir / d for d in config.settings.bot.plugin_dirs]
    if health:
        try:
            await bot.start()
            await asyncio.sleep(wait)
            described = await bot.plugins.describe_all()
            return [await _config_state(bot, config, d) for d in described]
        finally:
            await bot.stop()
    try:
        bot.plugins.discover(extra)
        described = await bot.plugins.describe_all(check_health=False)
        return [await _config_state(bot, config, d) for d in described]
    finally:
        bot.store.close()


async def _config_state(bot: Any, config: LoadedConfig, d: PluginDescription) -> PluginDescription:
    """Replace "not running" by what the config says about the plugin."""
    if d.state != "not running":
        return d
    if d.source == "core":
        return replace(d, state="always enabled")
    section = config.settings.plugins.get(d.name)
    if section is None:
        return replace(d, state="not in this config")
    if section.get("enabled", True) is False:
        return replace(d, state="disabled in this config")
    try:
        await bot.plugins.load(bot.plugins.available[d.name])
    except (ConfigError, BotError) as exc:
        return replace(d, state="invalid config", reason=str(exc))
    finally:
        bot.plugins.unregister(d.name)
    return replace(d, state="enabled in this config")


def cmd_plugins(args: argparse.Namespace) -> int:
    config = _load(args.config) if args.config else LoadedConfig(settings=Settings())
    described = asyncio.run(_describe_plugins(config, health=args.health, wait=args.wait))
    if args.json:
        print(json.dumps([d.to_dict() for d in described], indent=2))
    else:
        print("\n".join(d.format(location=True) for d in described))
    # A health check is a probe: a configured plugin that could not start makes it fail.
    broken = {"failed", "cannot load", "invalid config"}
    if args.health and any(d.state in broken for d in described):
        return 1
    return 0


# --------------------------------------------------------------------------- new-plugin


def cmd_new_plugin(args: argparse.Namespace) -> int:
    from .scaffold import ScaffoldError, create_plugin, next_steps

    directory = Path(args.directory)
    plugin_dirs: list[Path] = []
    if args.config:
        config = _load(args.config)
        plugin_dirs = [config.base_dir / d for d in config.settings.bot.plugin_dirs]
    try:
        written = create_plugin(args.name, directory, package=args.package, plugin_dirs=plugin_dirs)
    except ScaffoldError as exc:
        print(f"cannot create the plugin: {exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"created {path}")
    print("next: " + next_steps(args.name, directory, package=args.package))
    return 0


# --------------------------------------------------------------------------- simulate


async def _simulate(name: str, argv: list[str], plugin_dirs: list[str]) -> int:
    from .config import config_from_dict

    config = config_from_dict({})
    bot = _offline_bot(config)
    bot.plugins.discover([Path(d) for d in plugin_dirs])
    info = bot.plugins.available.get(name)
    if info is None:
        print(f"no plugin named {name!r}", file=sys.stderr)
        return 2
    module = bot.plugins.import_plugin(info)
    bot.plugins.register(name, module)
    sim = await bot.plugins.call(name, "bot_simulator", argv=argv)
    if sim is None:
        print(f"plugin {name} has no simulator", file=sys.stderr)
        return 2
    await sim.start()
    print(f"{name} simulator listening on {sim.url} (Ctrl-C to stop)", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sim.stop()
        bot.store.close()
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    return asyncio.run(_simulate(args.name, args.args, args.plugin_dir))


# --------------------------------------------------------------------------- backup, restore


def _database(config: LoadedConfig) -> Path:
    path = config.database_path()
    if str(path) == ":memory:":
        print("bot.database is :memory:; there is nothing to back up or restore", file=sys.stderr)
        raise SystemExit(2)
    return path


def cmd_backup(args: argparse.Namespace) -> int:
    from .backup import BackupError, create_backup

    db = _database(_load(args.config))
    try:
        done = create_backup(db, Path(args.dest))
    except BackupError as exc:
        print(f"backup failed: {exc}", file=sys.stderr)
        return 2
    key = "its key file" if done.key == "file" else "a note that the key is in BOT_SECRET_KEY"
    print(
        f"backed up {db} ({done.ledger_rows} ledger rows, {done.links} linked accounts) "
        f"with {key} to {done.path}"
    )
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from .backup import BackupError, restore_backup

    db = _database(_load(args.config))
    try:
        done = restore_backup(Path(args.src), db)
    except BackupError as exc:
        print(f"restore refused: {exc}", file=sys.stderr)
        return 2
    print(
        f"restored {db} from {args.src} ({done.ledger_rows} ledger rows, "
        f"{done.links} linked accounts); the tokens open with its key"
    )
    return 0


# --------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bot",
        description="The chat bot's command line: run it, check a config, migrate its "
        "database, list its plugins, create a plugin, run a plugin's API simulator.",
        epilog="Start with: bot run --config bot.example.yaml. Writing a plugin: "
        "docs/writing-plugins.md, or bot new-plugin --help.",
    )
    parser.add_argument("--log-level", default="warning", help="debug, info, warning, error")
    parser.add_argument(
        "--log-format", choices=FORMATS, default="text", help="json: one object per line"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run the bot")
    p.add_argument("--config", "-c", default="bot.yaml", help="config file (YAML)")
    p.add_argument(
        "--role",
        choices=("all", "gateway", "worker"),
        default="all",
        help="with bot.cluster set: gateway (transports) or worker (plugins); all runs both",
    )
    p.add_argument(
        "--shards",
        help="the Discord shards this process runs, like 0-3 (of transports.discord.shard_count)",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("check-config", help="validate a config file without starting")
    p.add_argument("file")
    p.set_defaults(func=cmd_check_config)

    p = sub.add_parser("migrate", help="apply database migrations and exit")
    p.add_argument("--config", "-c", default="bot.yaml")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser(
        "plugins", help="list plugins: version, source, hooks, commands, state, health"
    )
    p.add_argument("--config", "-c", default=None)
    p.add_argument(
        "--health",
        action="store_true",
        help="start the configured plugins (no transports, a throwaway in-memory database) "
        "and report their health; exits 1 if one failed to start",
    )
    p.add_argument(
        "--wait", type=float, default=1.0, help="seconds to let clients connect (--health)"
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser("new-plugin", help="create a plugin whose tests pass, to grow from")
    p.add_argument("name", help="the plugin's name: lower-case letters, digits, underscores")
    p.add_argument(
        "--package",
        action="store_true",
        help="a separate installable package (bot-NAME/) instead of plugins/NAME/",
    )
    p.add_argument(
        "--directory",
        "-d",
        default=".",
        help="where to create it: DIRECTORY/plugins/NAME and DIRECTORY/tests/plugins/NAME "
        "(default: .)",
    )
    p.add_argument(
        "--config",
        "-c",
        default=None,
        help="the bot's config: a name already in its plugin_dirs is refused",
    )
    p.set_defaults(func=cmd_new_plugin)

    p = sub.add_parser("simulate", help="run a plugin's API simulator on its own")
    p.add_argument(
        "--plugin-dir",
        action="append",
        default=[],
        help="also look for plugins in this directory (repeatable)",
    )
    p.add_argument("name")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser(
        "backup", help="copy the database and its key while the bot runs (a dir or .tar.gz)"
    )
    p.add_argument("--config", "-c", default="bot.yaml")
    p.add_argument("dest", help="a new directory, or a file name ending in .tar.gz")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", help="put a backup back (the bot must be stopped)")
    p.add_argument("--config", "-c", default="bot.yaml")
    p.add_argument("src", help="a backup directory or .tar.gz made by `bot backup`")
    p.set_defaults(func=cmd_restore)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
