"""``bot new-plugin``: the generated plugin passes ruff and its own tests, as generated.

Everything runs as a user would run it: the ``bot`` command line in a subprocess, ruff on the
files it wrote, and pytest on the generated tests in another subprocess (so they run with the
generated conftest, not ours). The package layout is installed into a throw-away target
directory with pip (no network, no change to the shared virtualenv) and found through its
entry point.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from bot.scaffold import Layout, ScaffoldError, check_free, check_name, layout_for, plan_files

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    found = BIN / name
    if found.exists():
        return str(found)
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    environ.update(env or {})
    return subprocess.run(
        args, cwd=cwd, env=environ, capture_output=True, text=True, timeout=120, check=False
    )


def assert_ruff_clean(paths: list[Path], *, cwd: Path, config: Path | None) -> None:
    options = ["--config", str(config)] if config else []
    checked = run(tool("ruff"), "check", *options, *map(str, paths), cwd=cwd)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    formatted = run(tool("ruff"), "format", "--check", *options, *map(str, paths), cwd=cwd)
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr


def bot_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return run(sys.executable, "-m", "bot.cli", *args, cwd=cwd, env=env)


def test_new_plugin_in_a_plugin_directory_passes_ruff_and_its_tests(tmp_path: Path) -> None:
    made = bot_cli("new-plugin", "demo", "--directory", str(tmp_path), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    lines = made.stdout.splitlines()
    written = [Path(line.removeprefix("created ")) for line in lines if line.startswith("created ")]
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == [
        "plugins/demo/__init__.py",
        "plugins/demo/client.py",
        "plugins/demo/config.py",
        "plugins/demo/migrations.py",
        "plugins/demo/simulator.py",
        "tests/plugins/demo/conftest.py",
        "tests/plugins/demo/test_demo_client.py",
        "tests/plugins/demo/test_demo_commands.py",
    ]
    assert "bot.plugin_dirs" in made.stdout
    assert_ruff_clean(written, cwd=tmp_path, config=REPO / "pyproject.toml")

    tested = run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-2000:]
    assert "11 passed" in tested.stdout

    again = bot_cli("new-plugin", "demo", "--directory", str(tmp_path), cwd=tmp_path)
    assert again.returncode == 2
    assert "already exist, so nothing was written" in again.stderr


def test_new_plugin_as_a_package_installs_and_passes_its_tests(tmp_path: Path) -> None:
    made = bot_cli("new-plugin", "demo", "--package", "--directory", str(tmp_path), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    root = tmp_path / "bot-demo"
    # It says how to get the framework it depends on.
    assert "it depends on chatbot-framework" in made.stdout
    assert f"pip install -e {REPO}" in made.stdout
    assert "install it there first" in (root / "README.md").read_text()
    assert (root / "pyproject.toml").exists()
    assert (root / "src" / "bot_demo" / "migrations.py").exists()
    # The package is its own project: its own ruff settings apply.
    assert_ruff_clean([root], cwd=root, config=None)

    site = tmp_path / "site"
    installed = run(
        sys.executable,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--no-cache-dir",
        "--target",
        str(site),
        str(root),
        cwd=tmp_path,
    )
    assert installed.returncode == 0, installed.stderr[-2000:]
    env = {"PYTHONPATH": str(site)}
    tested = run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=root, env=env)
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-2000:]
    assert "11 passed" in tested.stdout

    # Discovered through its entry point, with the distribution's version.
    listed = bot_cli("plugins", "--json", cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    (demo,) = [p for p in json.loads(listed.stdout) if p["name"] == "demo"]
    assert demo["source"] == "package"
    assert demo["version"] == "0.1.0"
    assert demo["location"] == "bot-demo: bot_demo"
    assert demo["commands"] == ["demo", "demo recent"]
    assert demo["state"] == "not in this config"


@pytest.mark.parametrize("name", ["demo", "abcdefghij_klmnopqrs"])
def test_every_layout_is_ruff_clean_also_for_the_longest_name(tmp_path: Path, name: str) -> None:
    bundled = Layout(
        "bundled",
        name,
        tmp_path / "plugins" / name,
        tmp_path / "tests" / "plugins" / name,
        tmp_path / "migrations" / f"{name}.py",
        f"bot_plugins.{name}",
        f"bot_migrations.{name}",
    )
    layouts = [
        bundled,
        layout_for(name, tmp_path / "dir"),
        layout_for(name, tmp_path / "pkg", package=True),
    ]
    for layout in layouts:
        for generated in plan_files(layout):
            generated.path.parent.mkdir(parents=True, exist_ok=True)
            generated.path.write_text(generated.text)
    assert_ruff_clean(
        [tmp_path / "plugins", tmp_path / "tests", tmp_path / "migrations", tmp_path / "dir"],
        cwd=REPO,
        config=REPO / "pyproject.toml",
    )
    package_root = layouts[2].root
    assert package_root is not None
    assert_ruff_clean([package_root], cwd=package_root, config=None)
    init = (tmp_path / "plugins" / name / "__init__.py").read_text()
    assert f"from bot_migrations.{name} import LOOKUPS, migrations" in init


def test_the_bundled_layout_passes_its_tests(tmp_path: Path) -> None:
    """The repository layout, rendered into a scratch tree that the packages are pointed at.

    (Generating into the real plugins/ directory would show a half-made plugin to everyone
    else using this checkout.)
    """
    layout = Layout(
        "bundled",
        "demo",
        tmp_path / "plugins" / "demo",
        tmp_path / "tests" / "plugins" / "demo",
        tmp_path / "migrations" / "demo.py",
        "bot_plugins.demo",
        "bot_migrations.demo",
    )
    for generated in plan_files(layout):
        generated.path.parent.mkdir(parents=True, exist_ok=True)
        generated.path.write_text(generated.text)
    (tmp_path / "conftest.py").write_text(
        "import bot_migrations\nimport bot_plugins\n\n"
        f"bot_plugins.__path__.append({str(tmp_path / 'plugins')!r})\n"
        f"bot_migrations.__path__.append({str(tmp_path / 'migrations')!r})\n"
    )
    tested = run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-2000:]
    assert "11 passed" in tested.stdout


def test_the_repository_layout_is_detected_and_bundled_imports_are_used() -> None:
    layout = layout_for("newthing", REPO)
    assert layout.kind == "bundled"
    assert layout.module == "bot_plugins.newthing"
    assert layout.migrations_path == REPO / "migrations" / "newthing.py"
    assert all(not f.path.exists() for f in plan_files(layout))


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("Demo", "not a valid plugin name"),
        ("9lives", "not a valid plugin name"),
        ("my-api", "not a valid plugin name"),
        ("../evil", "not a valid plugin name"),
        ("a" * 21, "at most 20 characters"),
        ("class", "reserved"),
        ("core", "reserved"),
        ("json", "reserved"),
    ],
)
def test_bad_names_are_refused_with_a_reason(name: str, problem: str) -> None:
    with pytest.raises(ScaffoldError, match=problem):
        check_name(name)


def test_the_cli_refuses_a_bad_name_and_writes_nothing(tmp_path: Path) -> None:
    made = bot_cli("new-plugin", "My-Api", "--directory", str(tmp_path), cwd=tmp_path)
    assert made.returncode == 2
    assert made.stderr.startswith("cannot create the plugin: 'My-Api' is not a valid plugin name")
    assert list(tmp_path.iterdir()) == []


async def test_bot_simulate_runs_a_generated_simulator_from_a_plugin_directory(
    tmp_path: Path,
) -> None:
    made = bot_cli("new-plugin", "demo", "--directory", str(tmp_path), cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "simulate",
        "--plugin-dir",
        str(tmp_path / "plugins"),
        "demo",
        "--port",
        "0",
        "--token",
        "cli-token",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(20):
            line = (await process.stdout.readline()).decode()
        assert line.startswith("demo simulator listening on ws://127.0.0.1:"), line
        url = line.split()[4]
        async with connect(url) as ws:
            await ws.send(json.dumps({"id": 1, "op": "hello", "token": "cli-token"}))
            assert json.loads(await ws.recv()) == {"id": 1, "ok": True}
            await ws.send(json.dumps({"id": 2, "op": "get_item", "name": "bread"}))
            reply = json.loads(await ws.recv())
            assert reply["item"] == {"name": "bread", "price": "2.20", "stock": 3}
    finally:
        process.terminate()
        async with asyncio.timeout(10):
            await process.wait()


def test_a_name_already_on_the_plugin_path_is_refused_and_nothing_written(tmp_path: Path) -> None:
    made = bot_cli("new-plugin", "deepbot", "--directory", str(tmp_path), cwd=tmp_path)
    assert made.returncode == 2
    assert made.stderr.startswith(
        "cannot create the plugin: a plugin named 'deepbot' already exists (bundled plugin at "
    )
    assert list(tmp_path.iterdir()) == []

    elsewhere = tmp_path / "more-plugins"
    (elsewhere / "weather").mkdir(parents=True)
    (elsewhere / "weather" / "__init__.py").write_text("")
    (tmp_path / "bot.yaml").write_text(f"bot:\n  plugin_dirs: [{elsewhere}]\n")
    made = bot_cli(
        "new-plugin", "weather", "-d", str(tmp_path / "new"), "--config", "bot.yaml", cwd=tmp_path
    )
    assert made.returncode == 2
    assert f"already exists (directory plugin at {elsewhere / 'weather'})" in made.stderr
    assert not (tmp_path / "new").exists()


def test_in_the_repository_the_tutorials_name_is_taken_by_examples() -> None:
    with pytest.raises(ScaffoldError, match="'parcels' already exists") as caught:
        check_free(layout_for("parcels", REPO))
    assert str(REPO / "examples" / "parcels") in str(caught.value)
    check_free(layout_for("newthing", REPO))
