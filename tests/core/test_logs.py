"""``bot --log-format json``: one JSON object per line, the error id users see, no secrets."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SECRET = "probe-api-key-0b7e55d1"

PROBE = '''
import logging

from pydantic import SecretStr
from bot import PluginConfig, command, hookimpl

class ProbeConfig(PluginConfig):
    api_key: SecretStr

@command("boom")
async def boom(ctx) -> str:
    """Fail the way a client does when the API echoes the key back."""
    raise RuntimeError(f"upstream refused key {ctx.config.api_key.get_secret_value()}")

@command("chatty")
async def chatty(ctx) -> str:
    """Log from the plugin."""
    ctx.plugin.log.warning("calling out with %s", ctx.config.api_key.get_secret_value())
    return "said it"

async def vendor_work():
    logging.getLogger("vendorlib").warning("vendor library says hello")

@hookimpl
def bot_startup(plugin):
    plugin.create_task(vendor_work())

@hookimpl
def bot_config_model():
    return ProbeConfig

@hookimpl
def bot_commands():
    return [boom, chatty]
'''


def run_bot(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    plugins = tmp_path / "plugins"
    plugins.mkdir(exist_ok=True)
    (plugins / "probe.py").write_text(textwrap.dedent(PROBE))
    config = tmp_path / "bot.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            bot:
              database: {tmp_path / "bot.db"}
              plugin_dirs: [{plugins}]
            plugins:
              probe:
                api_key: ${{PROBE_KEY}}
            """
        )
    )
    env = {**os.environ, "PROBE_KEY": SECRET}
    env.pop("BOT_SECRET_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *flags, "run", "--config", str(config)],
        input="!boom\n!chatty\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_json_logs_parse_line_by_line_with_the_error_id_and_no_secret(tmp_path: Path) -> None:
    done = run_bot(tmp_path, "--log-format", "json", "--log-level", "info")
    assert done.returncode == 0, done.stderr
    (error_id,) = re.findall(r"error id ([0-9a-f]{8})", done.stdout)
    assert "said it" in done.stdout
    lines = done.stderr.splitlines()
    assert lines
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    for record in records:
        assert {"time", "level", "logger", "plugin", "message", "error_id"} <= set(record)
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$", record["time"])
    (failure,) = [r for r in records if r["error_id"]]
    assert failure["error_id"] == error_id
    assert failure["level"] == "ERROR" and failure["plugin"] == "probe"
    assert failure["message"] == f"command boom failed (error id {error_id})"
    assert "upstream refused key ***" in failure["exception"]
    (chatty,) = [r for r in records if r["logger"] == "bot.plugin.probe"]
    assert chatty["plugin"] == "probe" and chatty["message"] == "calling out with ***"
    assert SECRET not in done.stderr and SECRET not in done.stdout
    # a library's logger, from a task the plugin started: attributed to the plugin
    (vendor,) = [r for r in records if r["logger"] == "vendorlib"]
    assert vendor["plugin"] == "probe"


@pytest.mark.parametrize("flags", [(), ("--log-format", "text")])
def test_text_logs_mask_secrets_in_tracebacks_too(tmp_path: Path, flags: tuple[str, ...]) -> None:
    done = run_bot(tmp_path, *flags)
    assert done.returncode == 0, done.stderr
    assert "upstream refused key ***" in done.stderr
    assert "calling out with ***" in done.stderr
    assert SECRET not in done.stderr


def test_an_unknown_log_format_is_refused(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--log-format", "xml", "run"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "invalid choice: 'xml'" in done.stderr
