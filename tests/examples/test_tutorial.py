"""docs/writing-plugins.md cannot rot: its code blocks are the example's files, and its
session is run.

Each ``<!-- include: PATH -->`` marker is followed by a code block that must equal the file at
PATH; every file of the example plugin and its tests must be quoted; and the config and the
console session under "Run it" are run with ``bot run``, which must print exactly the replies
shown. Run this file with Python to copy the files into the page after changing them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from bot.scaffold import layout_for

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "writing-plugins.md"
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")
INCLUDE = re.compile(
    r"<!-- include: (?P<path>\S+) -->\n```(?P<lang>\w+)\n(?P<body>.*?)```\n", re.DOTALL
)


def fenced_after(marker: str, text: str) -> str:
    match = re.search(rf"<!-- {marker} -->\n```\w+\n(.*?)```\n", text, re.DOTALL)
    assert match is not None, f"docs/writing-plugins.md has no block after <!-- {marker} -->"
    return match.group(1)


def test_every_included_block_is_the_file_it_names() -> None:
    text = DOC.read_text(encoding="utf-8")
    blocks = list(INCLUDE.finditer(text))
    assert blocks, "the tutorial includes no files"
    stale = [
        m["path"] for m in blocks if (REPO / m["path"]).read_text(encoding="utf-8") != m["body"]
    ]
    assert not stale, f"out of date in the tutorial: {stale}; run python {__file__}"


def test_every_file_of_the_example_is_in_the_tutorial() -> None:
    quoted = {m["path"] for m in INCLUDE.finditer(DOC.read_text(encoding="utf-8"))}
    files = sorted(
        p.relative_to(REPO).as_posix()
        for p in [*(REPO / "examples").rglob("*.py"), *(REPO / "tests" / "examples").glob("*.py")]
        if "__pycache__" not in p.parts and p != Path(__file__).resolve()
    )
    assert files
    assert [f for f in files if f not in quoted] == []


def test_the_session_in_run_it_gives_the_replies_shown(tmp_path: Path) -> None:
    text = DOC.read_text(encoding="utf-8")
    config = yaml.safe_load(fenced_after("tutorial-config", text))
    # The page's file sits in the repository root; here it sits in a temporary directory.
    config["bot"]["plugin_dirs"] = [str(REPO / d) for d in config["bot"]["plugin_dirs"]]
    config["bot"]["database"] = str(tmp_path / config["bot"]["database"])
    path = tmp_path / "parcels.yaml"
    path.write_text(yaml.safe_dump(config))
    session = fenced_after("tutorial-session", text).splitlines()
    typed = [line[2:] for line in session if line.startswith("> ")]
    shown = [line for line in session if not line.startswith("> ")]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "BOT_"))}
    ran = subprocess.run(
        [sys.executable, "-m", "bot.cli", "run", "--config", str(path)],
        input="".join(f"{line}\n" for line in typed),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == shown, ran.stderr


def test_bot_plugins_lists_the_tutorials_plugin_as_the_page_says(tmp_path: Path) -> None:
    text = DOC.read_text(encoding="utf-8")
    assert "`bot plugins --config parcels.yaml` lists every plugin" in text
    config = yaml.safe_load(fenced_after("tutorial-config", text))
    config["bot"]["plugin_dirs"] = [str(REPO / d) for d in config["bot"]["plugin_dirs"]]
    config["bot"]["database"] = str(tmp_path / config["bot"]["database"])
    path = tmp_path / "parcels.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "BOT_"))}
    listed = subprocess.run(
        [sys.executable, "-m", "bot.cli", "plugins", "--config", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    (parcels,) = [p for p in json.loads(listed.stdout) if p["name"] == "parcels"]
    assert parcels["source"] == "directory"
    assert parcels["state"] == "enabled in this config"
    assert parcels["topics"] == ["parcels.moved"]
    assert "parcels watch" in parcels["commands"]
    assert not (tmp_path / config["bot"]["database"]).exists()  # nothing was started


def test_the_printf_line_sends_the_session_shown() -> None:
    text = DOC.read_text(encoding="utf-8")
    command = fenced_after("tutorial-printf", text).replace("\\\n", " ")
    printf, _, bot_run = command.partition("|")
    assert bot_run.split() == ["bot", "run", "--config", "parcels.yaml"]
    sent = subprocess.run(
        ["sh", "-c", printf], capture_output=True, text=True, check=True, timeout=30
    ).stdout.splitlines()
    session = fenced_after("tutorial-session", text).splitlines()
    assert sent == [line[2:] for line in session if line.startswith("> ")]


def test_the_scaffold_commands_create_what_their_comments_say(tmp_path: Path) -> None:
    """Step 0's commands, run outside the repository (``~`` is a scratch directory)."""
    lines = fenced_after("scaffold-commands", DOC.read_text(encoding="utf-8")).splitlines()
    checked = 0
    for line in lines:
        command, _, comment = line.partition("#")
        words = command.split()
        if "--directory" not in words and "--package" not in words:
            continue  # the in-repository line would write into this checkout
        args = [w.replace("~", str(tmp_path)) for w in words[1:]]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "BOT_"))}
        made = subprocess.run(
            [sys.executable, "-m", "bot.cli", *args],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
            env=env,
            check=False,
        )
        assert made.returncode == 0, made.stderr
        claimed = re.findall(r"(~?[\w./-]+/)", comment)
        assert claimed, f"the comment of {line!r} names no directory"
        for path in claimed:
            assert (tmp_path / path.removeprefix("~/")).is_dir(), (line, path)
        checked += 1
    assert checked == 2


def test_the_layout_table_is_where_the_scaffold_puts_things(tmp_path: Path) -> None:
    text = DOC.read_text(encoding="utf-8")
    table = text[text.index("<!-- layouts -->") :].split("\n\n", 1)[0].splitlines()[3:]
    rows = {
        row.split("|")[1].split()[0]: [c.strip(" `") for c in row.split("|")[2:6]] for row in table
    }
    repo_layout = layout_for("demo", REPO)
    dir_layout = layout_for("demo", tmp_path)
    package = layout_for("demo", tmp_path, package=True)

    def rel(path: Path, base: Path, prefix: str = "") -> str:
        return prefix + path.relative_to(base).as_posix()

    def fill(cells: list[str], prefix: str = "") -> list[str]:
        return [c.replace("NAME", "demo").removeprefix(prefix).rstrip("/") for c in cells]

    assert fill(rows["bundled"]) == [
        rel(repo_layout.plugin_dir, REPO),
        rel(repo_layout.migrations_path, REPO),
        rel(repo_layout.tests_dir, REPO),
        repo_layout.module,
    ]
    assert fill(rows["plugin"], "DIR/") == [
        rel(dir_layout.plugin_dir, tmp_path),
        rel(dir_layout.migrations_path, tmp_path),
        rel(dir_layout.tests_dir, tmp_path),
        dir_layout.module,
    ]
    assert fill(rows["package"]) == [
        rel(package.plugin_dir, tmp_path),
        rel(package.migrations_path, tmp_path),
        rel(package.tests_dir, tmp_path),
        package.module,
    ]


def test_the_tutorials_tests_pass_copied_outside_the_repository(tmp_path: Path) -> None:
    """Copied to a directory with no pytest config, as a plugin author's would be.

    The repository's own ``asyncio_mode = "auto"`` does not reach there; the harness's
    pytest plugin has to make the async tests and fixtures run.
    """
    shutil.copytree(REPO / "examples", tmp_path / "examples", ignore=IGNORED)
    shutil.copytree(REPO / "tests" / "examples", tmp_path / "tests" / "examples", ignore=IGNORED)
    (tmp_path / "tests" / "examples" / Path(__file__).name).unlink()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "BOT_"))}
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/examples"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-2000:]
    assert re.search(r"\b\d+ passed\b", ran.stdout)


def sync() -> None:
    """Copy the example's files into the tutorial's include blocks."""
    text = DOC.read_text(encoding="utf-8")

    def fill(m: re.Match[str]) -> str:
        body = (REPO / m["path"]).read_text(encoding="utf-8")
        return f"<!-- include: {m['path']} -->\n```{m['lang']}\n{body}```\n"

    DOC.write_text(INCLUDE.sub(fill, text), encoding="utf-8")


if __name__ == "__main__":
    sync()
