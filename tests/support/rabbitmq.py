"""A private RabbitMQ broker for tests and benchmarks.

The ChatWars API lives on RabbitMQ, and its tests must talk to a real broker, but the machine's
own rabbitmq-server (if any) is not ours to touch: several test sessions and benchmarks may run
at once. Each :class:`RabbitMQBroker` therefore runs its own node under a unique name, with its
own data, log and config files in a temporary directory, its own AMQP and Erlang distribution
ports, and its own Erlang cookie (``HOME`` points into the temporary directory), and it is
killed with its whole process group on the way out, also when the test session fails.

Importable on its own (no project imports), so benchmarks can load it by path::

    sys.path.insert(0, "tests/support"); import rabbitmq
    with rabbitmq.running_broker() as broker:
        print(broker.url)

A node takes about five seconds to boot: start one per session, not per test.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["BrokerError", "RabbitMQBroker", "find_rabbitmq_bin", "running_broker"]

# The /usr/sbin wrappers of the Debian package cd into /var/lib/rabbitmq and switch to the
# rabbitmq user when run as root, which would bypass our private directories; the scripts they
# wrap take every setting from the environment, so those are what we run.
_BIN_DIRS = ("/usr/lib/rabbitmq/bin", "/usr/local/lib/rabbitmq/bin", "/opt/rabbitmq/sbin")
_AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


class BrokerError(RuntimeError):
    """The broker could not be started, reached or controlled; carries the log's tail."""


def find_rabbitmq_bin() -> Path | None:
    """The directory holding rabbitmq-server and rabbitmqctl, or None when not installed.

    ``RABBITMQ_BIN_DIR`` overrides the search, for installs in unusual places.
    """
    candidates = [os.environ.get("RABBITMQ_BIN_DIR", ""), *_BIN_DIRS]
    candidates += sorted(glob.glob("/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin"), reverse=True)
    for directory in candidates:
        if directory and os.access(os.path.join(directory, "rabbitmq-server"), os.X_OK):
            return Path(directory)
    return None


def free_port() -> int:
    """A port nobody listens on right now (the broker binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def amqp_ready(host: str, port: int, timeout: float = 1.0) -> bool:
    """True once the broker answers the AMQP protocol header with Connection.Start.

    A listening socket alone is not enough: the port opens before the broker accepts logins.
    """
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(_AMQP_HEADER)
            frame = sock.recv(7)
    except OSError:
        return False
    # A method frame (type 1) on channel 0 is Connection.Start; anything else is not ready.
    return len(frame) == 7 and frame[0] == 1 and frame[1:3] == b"\x00\x00"


class RabbitMQBroker:
    """One private RabbitMQ node; ``start()`` blocks until it accepts AMQP connections.

    ``url`` is ready for aio-pika (the default ``guest`` user may log in from 127.0.0.1).
    ``close_all_connections()`` and ``restart()`` let a test break every client's connection
    the way a network failure or a broker restart would.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        *,
        port: int = 0,
        dist_port: int = 0,
        node_name: str | None = None,
        base_dir: str | os.PathLike[str] | None = None,
        startup_timeout: float = 60.0,
        schedulers: int = 1,
    ) -> None:
        bin_dir = find_rabbitmq_bin()
        if bin_dir is None:
            raise BrokerError(
                "rabbitmq-server is not installed (apt-get install rabbitmq-server), "
                "or set RABBITMQ_BIN_DIR to the directory holding it"
            )
        self.bin_dir = bin_dir
        self.port = port or free_port()
        self.dist_port = dist_port or free_port()
        self.node_name = node_name or f"cwtest-{os.getpid()}-{uuid.uuid4().hex[:8]}@localhost"
        self.startup_timeout = startup_timeout
        self.schedulers = schedulers
        self._own_dir = base_dir is None
        self.base_dir = Path(base_dir or tempfile.mkdtemp(prefix="rabbitmq-"))
        self._process: subprocess.Popen[bytes] | None = None
        self._write_files()

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{self.host}:{self.port}/"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _write_files(self) -> None:
        for sub in ("home", "mnesia", "log"):
            (self.base_dir / sub).mkdir(parents=True, exist_ok=True)
        # Keep the machine's /etc/rabbitmq out of it; a low disk-free limit keeps a nearly full
        # CI disk from raising an alarm that would silently block every publisher.
        (self.base_dir / "rabbitmq-env.conf").write_text("")
        (self.base_dir / "enabled_plugins").write_text("[].\n")
        (self.base_dir / "rabbitmq.conf").write_text(
            "disk_free_limit.absolute = 1MB\nlog.console = false\nlog.file.level = warning\n"
        )

    def _env(self) -> dict[str, str]:
        base = self.base_dir
        env = dict(os.environ)
        env.update(
            HOME=str(base / "home"),  # the Erlang cookie lives here, shared with rabbitmqctl
            RABBITMQ_CONF_ENV_FILE=str(base / "rabbitmq-env.conf"),
            RABBITMQ_CONFIG_FILE=str(base / "rabbitmq.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(base / "enabled_plugins"),
            RABBITMQ_MNESIA_BASE=str(base / "mnesia"),
            RABBITMQ_LOG_BASE=str(base / "log"),
            RABBITMQ_PID_FILE=str(base / "rabbitmq.pid"),
            RABBITMQ_NODENAME=self.node_name,
            RABBITMQ_NODE_IP_ADDRESS=self.host,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            # Few schedulers: the test machines are small and shared.
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=f"+S {self.schedulers}:{self.schedulers}",
        )
        return env

    def log_tail(self, lines: int = 30) -> str:
        """The end of the node's logs, for error messages."""
        chunks = []
        for path in [self.base_dir / "server.out", *sorted((self.base_dir / "log").glob("*"))]:
            with contextlib.suppress(OSError):
                text = path.read_text(errors="replace").splitlines()[-lines:]
                chunks.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(chunks)

    def start(self) -> None:
        """Boot the node and wait until it accepts AMQP; kill it if it does not come up."""
        if self.running:
            return
        out = open(self.base_dir / "server.out", "ab")  # the child keeps its own copy
        try:
            self._process = subprocess.Popen(
                [str(self.bin_dir / "rabbitmq-server")],
                env=self._env(),
                cwd=self.base_dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed as one
            )
        finally:
            out.close()
        _LIVE.add(self)
        deadline = time.monotonic() + self.startup_timeout
        while not amqp_ready(self.host, self.port):
            if self._process.poll() is not None:
                self._process = None
                raise BrokerError(f"rabbitmq-server exited during startup:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise BrokerError(
                    f"rabbitmq-server did not accept AMQP within {self.startup_timeout:.0f} s:\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.2)

    def stop(self, timeout: float = 20.0) -> None:
        """Shut the node down cleanly (SIGTERM), killing it if it lingers; safe to call twice."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return
        # The script may exit before the Erlang VM it started; sweep the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        self._process = None

    def kill(self) -> None:
        """Kill the node's whole process group at once (used on failures and at exit)."""
        process = self._process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)
        self._process = None

    def restart(self) -> None:
        """Stop and start the node on the same ports with the same data (durable state stays)."""
        self.stop()
        self.start()

    def ctl(self, *args: str, timeout: float = 30.0) -> str:
        """Run ``rabbitmqctl`` against this node and return its output."""
        result = subprocess.run(
            [str(self.bin_dir / "rabbitmqctl"), "-n", self.node_name, "-q", *args],
            env=self._env(),
            cwd=self.base_dir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise BrokerError(f"rabbitmqctl {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def add_user(
        self,
        name: str,
        password: str,
        *,
        configure: str = "^$",
        write: str = ".*",
        read: str = ".*",
        vhost: str = "/",
    ) -> str:
        """Create a login with the given permission patterns and return its URL.

        The default may publish and consume but not declare anything, which is how the real
        ChatWars broker treats apps.
        """
        self.ctl("add_user", name, password)
        self.ctl("set_permissions", "-p", vhost, name, configure, write, read)
        return f"amqp://{name}:{password}@{self.host}:{self.port}/"

    def queue_depths(self) -> dict[str, int]:
        """Messages ready or unacknowledged per queue (to prove nothing is left behind)."""
        depths = {}
        for line in self.ctl("list_queues", "name", "messages").splitlines():
            name, _, count = line.rpartition("\t")
            if name and count.isdigit():
                depths[name] = int(count)
        return depths

    def connection_count(self) -> int:
        """How many AMQP client connections the node has open right now."""
        return len([line for line in self.ctl("list_connections", "pid").splitlines() if line])

    def close_all_connections(self, reason: str = "closed by test") -> None:
        """Drop every client connection, as a network failure would; queues and messages stay."""
        self.ctl("close_all_connections", reason)

    def cleanup(self) -> None:
        """Stop the node and delete its directory (when we created it)."""
        self.stop()
        _LIVE.discard(self)
        if self._own_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()


@contextlib.contextmanager
def running_broker(**options: object) -> Iterator[RabbitMQBroker]:
    """A started private broker for the block's duration (see RabbitMQBroker's options)."""
    with RabbitMQBroker(**options) as broker:  # type: ignore[arg-type]
        yield broker


_LIVE: set[RabbitMQBroker] = set()


@atexit.register
def _kill_leftovers() -> None:
    """A crashed session must not leave Erlang nodes behind on a shared machine."""
    for broker in list(_LIVE):
        broker.kill()
