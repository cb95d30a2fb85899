"""Config: YAML, ${VAR} interpolation, errors with dotted path and line, secrets never shown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import load_config, parse_config_text
from bot.errors import ConfigError


def test_values_and_environment_interpolation() -> None:
    cfg = parse_config_text(
        """
bot:
  prefix: "?"
  database: ${DB:-data/x.db}
  admins: {discord: [123, "456"], telegram: [7]}
transports:
  telegram: {enabled: true, token: "${TG_TOKEN}"}
plugins:
  deepbot:
    port: ${PORT:-3337}
""",
        env={"TG_TOKEN": "tg-secret"},
    )
    s = cfg.settings
    assert s.bot.prefix == "?" and s.bot.database == "data/x.db"
    assert s.bot.admins.discord == ["123", "456"] and s.bot.admins.telegram == ["7"]
    assert s.transports.telegram.token is not None
    assert s.transports.telegram.token.get_secret_value() == "tg-secret"
    assert s.plugins["deepbot"]["port"] == 3337  # re-resolved as an int
    assert s.transports.console.admin is True  # the console user is an admin by default


def test_unknown_keys_and_bad_values_name_their_path_and_line() -> None:
    text = "bot:\n  name: x\n  prefx: '!'\ntransports:\n  discord:\n    shard_count: many\n"
    with pytest.raises(ConfigError) as info:
        parse_config_text(text, env={})
    lines = str(info.value).splitlines()
    assert "config:3: bot.prefx: unknown key" in lines
    assert any(line.startswith("config:6: transports.discord.shard_count:") for line in lines)


def test_missing_environment_variable_is_reported() -> None:
    with pytest.raises(ConfigError, match="environment variable NOPE is not set"):
        parse_config_text("bot:\n  name: ${NOPE}\n", env={})


def test_secrets_are_not_printed_in_errors() -> None:
    text = "transports:\n  telegram:\n    token: [hunter2-secret]\n"
    with pytest.raises(ConfigError) as info:
        parse_config_text(text, env={})
    assert "hunter2" not in str(info.value)
    assert "transports.telegram.token" in str(info.value)


def test_invalid_yaml_has_a_line() -> None:
    with pytest.raises(ConfigError, match=r"config:\d+: not valid YAML"):
        parse_config_text("bot:\n  name: [unclosed\n", env={})


def _bot(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_config_command(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("bot: {name: ok}\n")
    result = _bot("check-config", str(good), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "configuration is valid" in result.stdout

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "bot: {name: ok}\n"
        "transports:\n  discord: {token: sekrit-value-1, colour: red}\n"
        "plugins:\n  nosuchplugin: {}\n"
    )
    result = _bot("check-config", str(bad), cwd=tmp_path)
    assert result.returncode == 2
    assert "bad.yaml:3: transports.discord.colour: unknown key" in result.stderr
    assert "sekrit" not in result.stderr + result.stdout


def test_check_config_validates_plugin_sections(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "strict.py").write_text(
        "from pydantic import SecretStr, field_validator\n"
        "from bot import PluginConfig, hookimpl\n"
        "class Cfg(PluginConfig):\n"
        "    url: str\n"
        "    secret: SecretStr\n"
        "    @field_validator('url')\n"
        "    @classmethod\n"
        "    def _url(cls, v):\n"
        "        if not v.startswith(('ws://', 'wss://')):\n"
        "            raise ValueError('not a ws:// or wss:// URL')\n"
        "        return v\n"
        "@hookimpl\n"
        "def bot_config_model():\n"
        "    return Cfg\n"
    )
    cfg = tmp_path / "bot.yaml"
    cfg.write_text(
        "bot:\n  plugin_dirs: [plugins]\n"
        "plugins:\n  strict:\n    url: http://x\n    secret: topsecret-123\n"
    )
    result = _bot("check-config", str(cfg), cwd=tmp_path)
    assert result.returncode == 2
    assert "bot.yaml:5: plugins.strict.url: not a ws:// or wss:// URL" in result.stderr
    assert "topsecret" not in result.stderr


def test_load_config_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.yaml")
