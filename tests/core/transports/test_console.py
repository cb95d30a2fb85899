"""The console transport's stable contract, run as a real process: `bot run` fed by a pipe."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def run_bot(
    config: Path, stdin: str, cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "BOT_SECRET_KEY"}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "run", "--config", str(config)],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )


def test_example_config_help_and_ping(tmp_path: Path) -> None:
    config = tmp_path / "bot.example.yaml"
    shutil.copy(REPO / "bot.example.yaml", config)
    result = run_bot(config, "!help\n!ping\n", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert out[0].startswith("Commands (!help <command> for details):")
    assert "!ping - Check that the bot answers." in out
    assert out[-1] == "pong"
    # The embedded default needs no set-up: the key file was created beside the database.
    assert (tmp_path / "data" / "bot.db.key").exists()


def test_each_line_completes_and_questions_take_the_next_line(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "talk.py").write_text(
        textwrap.dedent(
            '''
            import asyncio
            from bot import Topic, command, hookimpl, subscription_command

            @command()
            async def later(ctx) -> str:
                """Answer after a delay."""
                await asyncio.sleep(0.3)
                return "first"

            @command()
            async def name(ctx) -> str:
                """Ask for a name."""
                who = await ctx.ask("Your name?")
                return f"Hi {who}"

            @command()
            async def shout(ctx, text: str) -> None:
                """Publish an alert."""
                ctx.plugin.publish("talk.news", text.upper())

            @hookimpl
            def bot_alert_topics():
                return [Topic("talk.news")]

            @hookimpl
            def bot_commands():
                return [later, name, shout, subscription_command("news", "talk.news")]
            '''
        )
    )
    config = tmp_path / "bot.yaml"
    config.write_text(
        "bot:\n  database: bot.db\n  plugin_dirs: [plugins]\n  alert_window: 0.01\n"
        "plugins:\n  talk: {}\n"
    )
    result = run_bot(config, "!later\n!ping\n!name\nAda\n!news on\n!shout hey\n", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "first",
        "pong",
        "Your name?",
        "Hi Ada",
        "This chat now receives talk.news alerts.",
        "HEY",
    ]


def test_a_question_left_unanswered_at_end_of_input_ends_cleanly(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "asker.py").write_text(
        "from bot import command, hookimpl\n"
        "@command()\nasync def code(ctx) -> str:\n"
        '    """Ask."""\n'
        "    return await ctx.ask('Code?')\n"
        "@hookimpl\ndef bot_commands():\n    return [code]\n"
    )
    config = tmp_path / "bot.yaml"
    config.write_text("bot:\n  plugin_dirs: [plugins]\nplugins:\n  asker: {}\n")
    result = run_bot(config, "!code\n", cwd=tmp_path, timeout=20)
    assert result.returncode == 0
    assert result.stdout.splitlines() == ["Code?", "No answer came, so nothing was done."]


def test_a_bad_config_does_not_start(tmp_path: Path) -> None:
    config = tmp_path / "bot.yaml"
    config.write_text("bot:\n  prefix: ''\n")
    result = run_bot(config, "!ping\n", cwd=tmp_path)
    assert result.returncode == 2
    assert "bot.yaml:2: bot.prefix: must be a non-empty prefix" in result.stderr
    assert result.stdout == ""
