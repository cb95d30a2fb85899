"""docs/deploy.md: the config it shows is valid, and its units say what the page says.

The config block is checked by ``bot check-config`` in a subprocess, with the environment file's
variables set, as the page tells the operator to do before starting the service. The units are
read as systemd reads them (``[Section]`` and ``Key=value`` lines); where ``systemd-analyze`` is
installed, it verifies them too.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```\n", DOC.read_text(encoding="utf-8"), re.S)


def service_config() -> str:
    (config,) = [b for b in blocks("yaml") if b.startswith("bot:")]
    return config


def environment_file() -> dict[str, str]:
    (env,) = [b for b in blocks("sh") if "DISCORD_TOKEN=" in b]
    # The page's values, with each elided secret ("...") filled in.
    return {
        name: value.replace("...", f"placeholder-{name.lower()}")
        for name, value in re.findall(r"^([A-Z_]+)=(\S+)", env, re.M)
    }


def unit(name: str) -> dict[str, dict[str, str]]:
    """The ini block that follows the page's mention of ``name`` (sections -> keys)."""
    text = DOC.read_text(encoding="utf-8")
    found = re.search(rf"`{re.escape(name)}`[^`]*?:\n\n```ini\n(.*?)```\n", text, re.S)
    assert found is not None, name
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    for line in found[1].splitlines():
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
        elif line and not line.startswith("#"):
            key, _, value = line.partition("=")
            current[key] = value
    return sections


def test_the_service_config_passes_check_config_with_the_environment_file(
    tmp_path: Path,
) -> None:
    config = tmp_path / "bot.yaml"
    config.write_text(service_config())
    env = {**os.environ, **environment_file()}
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "check-config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "configuration is valid" in done.stdout
    # The secrets the config names are exactly the ones the environment file provides.
    wanted = set(re.findall(r"\$\{([A-Z_]+)\}", service_config()))
    assert wanted <= set(environment_file())


def test_the_unit_restarts_on_failure_reads_secrets_and_runs_json_logs() -> None:
    service = unit("/etc/systemd/system/bot.service")["Service"]
    assert service["Restart"] == "on-failure"
    assert service["EnvironmentFile"] == "/etc/bot/bot.env"
    assert service["StandardInput"] == "null"
    assert "--log-format json" in service["ExecStart"]
    assert service["ExecStart"].endswith("run --config /etc/bot/bot.yaml")


def test_the_watchdog_probes_the_health_endpoint_the_config_listens_on() -> None:
    listen = yaml.safe_load(service_config())["bot"]["metrics"]["listen"]
    probe = unit("/etc/systemd/system/bot-watchdog.service")["Service"]["ExecStart"]
    assert f"http://{listen}/healthz" in probe
    assert "systemctl restart bot" in probe
    timer = unit("/etc/systemd/system/bot-watchdog.timer")["Timer"]
    assert timer["OnUnitActiveSec"]


def test_the_units_verify_with_systemd_analyze(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    text = DOC.read_text(encoding="utf-8")
    service = re.search(r"`/etc/systemd/system/bot.service`:\n\n```ini\n(.*?)```\n", text, re.S)
    assert service is not None
    path = tmp_path / "bot.service"
    path.write_text(service[1])
    done = subprocess.run(
        [analyze, "verify", str(path)], capture_output=True, text=True, timeout=60, check=False
    )
    # Only the unit's own syntax is judged: the binary and the user do not exist here.
    problems = [
        line
        for line in done.stderr.splitlines()
        if "bot.service" in line
        and not re.search(r"not executable|No such file|not found|does not exist", line)
    ]
    assert problems == [], done.stderr
