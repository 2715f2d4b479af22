"""A real, local ZooKeeper server for demos and tests (Debian's `zookeeper` package).

    zk = LocalZooKeeper(tmp_dir)
    zk.start()            # a free loopback port; returns once it serves
    zk.url                # 'zk://127.0.0.1:PORT'
    zk.stop(); zk.start() # same port and data: sessions survive a short outage

`start`/`stop` block while the JVM starts or ends; in async code use `astart`/`astop`.

    ensemble = ZooKeeperEnsemble(tmp_dir)   # three servers on loopback, one quorum
    ensemble.start(); ensemble.url          # 'zk://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3'
    ensemble.leader().kill()                # the others elect a new leader
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

ZOOKEEPER_JAR = Path(os.environ.get("CSF_ZOOKEEPER_JAR", "/usr/share/java/zookeeper.jar"))
START_TIMEOUT = 30.0


class ZooKeeperUnavailable(RuntimeError):
    """No Java or no ZooKeeper jar here, or the server would not start."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def four_letter_word(port: int, word: str, timeout: float = 1.0) -> str:
    """Send one of ZooKeeper's four-letter commands; '' when it does not answer."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(word.encode())
            chunks = []
            while chunk := sock.recv(4096):
                chunks.append(chunk)
            return b"".join(chunks).decode(errors="replace")
    except OSError:
        return ""


class LocalZooKeeper:
    """One ZooKeeper process on 127.0.0.1, with its data under `directory`: standalone,
    or server `myid` of a quorum whose (peer port, election port) pairs are `quorum`."""

    def __init__(
        self,
        directory: Path,
        port: int | None = None,
        tick_ms: int = 500,
        *,
        myid: int = 0,
        quorum: Sequence[tuple[int, int]] = (),
    ) -> None:
        self.directory = Path(directory)
        self.port = port or free_port()
        self.tick_ms = tick_ms
        self.myid = myid
        self.quorum = tuple(quorum)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def hosts(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"zk://{self.hosts}"

    def _write_config(self) -> Path:
        data = self.directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        members = []
        if self.quorum:
            (data / "myid").write_text(f"{self.myid}\n")
            members = ["initLimit=20", "syncLimit=5"] + [
                f"server.{n}=127.0.0.1:{peer}:{election}"
                for n, (peer, election) in enumerate(self.quorum, start=1)
            ]
        config = self.directory / "zoo.cfg"
        config.write_text(
            "\n".join(
                [
                    *members,
                    f"tickTime={self.tick_ms}",
                    f"dataDir={data}",
                    f"clientPort={self.port}",
                    "clientPortAddress=127.0.0.1",
                    "maxClientCnxns=0",
                    "admin.enableServer=false",
                    "4lw.commands.whitelist=*",
                    # Tests and demos need no durability across machine crashes.
                    "forceSync=no",
                    f"minSessionTimeout={2 * self.tick_ms}",
                    "maxSessionTimeout=60000",
                    "",
                ]
            )
        )
        return config

    def start(self) -> None:
        """Start the server and return once it serves requests."""
        self.launch()
        self.wait_serving()

    def launch(self) -> None:
        """Start the process; a quorum member serves only once a quorum is up."""
        java = shutil.which("java")
        if java is None or not ZOOKEEPER_JAR.exists():
            raise ZooKeeperUnavailable(
                f"need java and {ZOOKEEPER_JAR} (Debian package 'zookeeper')"
            )
        config = self._write_config()
        log = (self.directory / "zookeeper.log").open("ab")
        self.process = subprocess.Popen(
            [
                java,
                "-Xmx256m",
                "-cp",
                str(ZOOKEEPER_JAR),
                f"-Dzookeeper.log.dir={self.directory}",
                "org.apache.zookeeper.server.quorum.QuorumPeerMain",
                str(config),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()

    def wait_serving(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not self.mode:
            if self.process is None or self.process.poll() is not None:
                raise ZooKeeperUnavailable(
                    f"ZooKeeper exited; see {self.directory / 'zookeeper.log'}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise ZooKeeperUnavailable(f"ZooKeeper did not serve within {START_TIMEOUT}s")
            time.sleep(0.05)

    @property
    def mode(self) -> str:
        """'standalone', 'leader' or 'follower' while serving; '' otherwise."""
        for line in four_letter_word(self.port, "srvr").splitlines():
            if line.startswith("Mode:"):
                return line.split(":", 1)[1].strip()
        return ""

    def kill(self) -> None:
        """SIGKILL: no goodbye to clients or peers."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def stop(self) -> None:
        """Stop the server (SIGKILL after 10 s of SIGTERM); its data stays."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def astart(self) -> None:
        await asyncio.to_thread(self.start)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)

    def __enter__(self) -> LocalZooKeeper:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class ZooKeeperEnsemble:
    """`size` ZooKeeper servers on loopback forming one quorum, each with its own data."""

    def __init__(self, directory: Path, size: int = 3, tick_ms: int = 500) -> None:
        quorum = [(free_port(), free_port()) for _ in range(size)]
        self.servers = [
            LocalZooKeeper(Path(directory) / f"zk{n}", tick_ms=tick_ms, myid=n, quorum=quorum)
            for n in range(1, size + 1)
        ]

    @property
    def hosts(self) -> str:
        return ",".join(server.hosts for server in self.servers)

    @property
    def url(self) -> str:
        return f"zk://{self.hosts}"

    def start(self) -> None:
        for server in self.servers:
            server.launch()
        for server in self.servers:
            server.wait_serving()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

    def leader(self) -> LocalZooKeeper | None:
        return next((s for s in self.servers if s.running and s.mode == "leader"), None)

    def __enter__(self) -> ZooKeeperEnsemble:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
