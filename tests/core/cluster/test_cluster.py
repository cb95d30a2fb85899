"""The bot as a cluster of real processes on a real broker: gateway, workers, owners.

The console chat hashes to partition 14 of 16: once two workers have split the partitions
(the first keeps 0-7), its commands land on the second worker while the first owns the probe
plugin, so the forwarding path between them is what these tests drive.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from bot.cluster.envelope import partition_of

ORDERED = 300


def two_balanced_workers(cluster: Any) -> tuple[subprocess.Popen[str], subprocess.Popen[str]]:
    first = cluster.worker()
    cluster.wait(lambda: cluster.owner_of("plugin probe") == first.pid, what="probe owner")
    second = cluster.worker()
    cluster.wait(
        lambda: (
            cluster.partitions_of(first.pid) == "partitions 0-7"
            and cluster.partitions_of(second.pid) == "partitions 8-15"
        ),
        what="balanced partitions",
    )
    return first, second


def test_the_console_chat_hashes_to_the_second_workers_half() -> None:
    assert partition_of("console", "console", 16) == 14


def test_a_console_gateway_keeps_the_pipe_contract_across_the_cluster(make_cluster: Any) -> None:
    cluster = make_cluster()
    first, _ = two_balanced_workers(cluster)
    lines = ["!ping", "!probe ask", "red", "big", "!probe pid", "!probe seq 7", "!nosuch"]
    out = cluster.gateway([*lines, "!probe confirm", "yes"])
    assert out[:6] == ["pong", "colour?", "size?", "got red big", f"pid {first.pid}", "seq 7"]
    assert out[6].startswith("Unknown command !nosuch.")
    # The console has no buttons: the gateway says so and the worker asks in text.
    assert out[7:] == ["Really do it? (yes/no)", f"confirmed in {first.pid}"]


def test_a_plugin_switched_off_in_a_chat_is_off_at_its_owner_too(make_cluster: Any) -> None:
    """The switch is written by the worker of the chat's partition; the plugin's commands run
    at its owner, another process, which must refuse them from then on (and not only after
    a restart)."""
    cluster = make_cluster()
    first, _ = two_balanced_workers(cluster)
    out = cluster.gateway(
        [
            "!probe pid",
            "!plugins disable probe here",
            "!probe pid",
            "!plugins enable probe here",
            "!probe pid",
            "!plugins disable probe pid here",
            "!probe pid",
            "!probe seq 1",
        ]
    )
    assert out == [
        f"pid {first.pid}",
        "probe disabled in this chat.",
        "probe pid is turned off in this chat.",
        "probe enabled in this chat.",
        f"pid {first.pid}",
        # one command of a plugin that runs in the other worker (not registered here)
        "probe pid disabled in this chat.",
        "probe pid is turned off in this chat.",
        "seq 1",
    ]


def test_plugins_are_not_started_or_stopped_per_worker(make_cluster: Any) -> None:
    """A worker that started a plugin on an admin's word would run a second copy of what
    its owner runs; one that stopped it would strand its commands."""
    cluster = make_cluster()
    first, _ = two_balanced_workers(cluster)
    out = cluster.gateway(
        [
            "!plugins disable probe",
            "!plugins enable probe",
            "!plugins reload probe",
            "!probe pid",
            "!plugins probe",
        ]
    )
    assert [line.split(":")[0] for line in out[:3]] == [
        "In a cluster, this command cannot disable a plugin",
        "In a cluster, this command cannot enable a plugin",
        "In a cluster, this command cannot reload a plugin",
    ]
    assert out[3] == f"pid {first.pid}"
    assert cluster.owner_of("plugin probe") == first.pid
    # this worker does not run it; the listing says where it does, not "not running"
    head = out[4].splitlines()[0]
    assert head.startswith("probe ") and head.endswith(
        f": up at worker {socket.gethostname()} pid {first.pid}"
    )


def test_status_shows_every_process_and_what_it_owns(make_cluster: Any) -> None:
    cluster = make_cluster()
    first, second = two_balanced_workers(cluster)
    out = "\n".join(cluster.gateway(["!status"]))
    assert "plugin probe: up" in out
    assert "transport console: up" in out
    assert "cluster " + cluster.name + ": 3 processes" in out
    lines = out.splitlines()
    mine = next(x for x in lines if f"pid {first.pid}:" in x)
    assert mine.lstrip().startswith("worker ")
    assert mine.endswith("owns plugin probe, partitions 0-7")
    # the console's partition is the second worker's, so it is the one answering
    theirs = next(x for x in lines if f"pid {second.pid} (this one):" in x)
    assert theirs.endswith("owns partitions 8-15")
    assert any(x.lstrip().startswith("gateway ") and "owns transport console" in x for x in lines)


def test_every_command_is_answered_once_and_in_order_while_workers_are_killed(
    make_cluster: Any,
) -> None:
    cluster = make_cluster()
    first, second = two_balanced_workers(cluster)
    stream = cluster.stream()
    stream.send(*(f"!probe seq {i}" for i in range(1, ORDERED + 1)))
    stream.wait_for(ORDERED * 3 // 10)
    cluster.kill(first)  # the probe plugin's owner, mid-stream
    third = cluster.worker()
    stream.wait_for(ORDERED * 6 // 10)
    cluster.kill(second)  # the console partition's owner
    out = stream.wait_for(ORDERED, timeout=90)
    assert stream.close() == 0
    assert out == [f"seq {i}" for i in range(1, ORDERED + 1)], cluster.logs()
    cluster.wait(lambda: cluster.owner_of("plugin probe") == third.pid, what="the last owner")


def test_a_new_owner_takes_over_and_keeps_the_followed_alerts_coming(make_cluster: Any) -> None:
    cluster = make_cluster()
    first = cluster.worker()
    cluster.wait(lambda: cluster.owner_of("plugin probe") == first.pid, what="probe owner")
    second = cluster.worker()
    stream = cluster.stream()
    stream.send("!probe follow")
    cluster.wait(lambda: any(f"from {first.pid}" in x for x in stream.lines), what="beats")
    cluster.kill(first)
    cluster.wait(lambda: any(f"from {second.pid}" in x for x in stream.lines), what="takeover")
    assert stream.lines[0] == "following"
    stream.send("!probe pid")
    cluster.wait(lambda: f"pid {second.pid}" in stream.lines, what="commands at the new owner")
    assert stream.close() == 0
    beats = [x for x in stream.lines if x.startswith("beat ")]
    # each beat reached the chat once: the same beat never printed twice
    assert len(beats) == len(set(beats))


def test_single_process_run_needs_no_broker(make_cluster: Any, tmp_path: Any) -> None:
    config = tmp_path / "single.yaml"
    config.write_text(
        "bot: {database: " + str(tmp_path / "single.db") + "}\n"
        "transports: {console: {enabled: true}}\n"
    )
    bot = str(Path(sys.executable).with_name("bot"))
    out = subprocess.run(
        [bot, "run", "--config", str(config), "--role", "worker"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2
    assert "--role worker needs bot.cluster.amqp_url" in out.stderr
