"""A real two-node Ray cluster on this machine for the compute-backend tests.

``ray start --head`` plus ``ray start --address`` (one CPU each, a small object store, their own
``--temp-dir`` and free ports, no dashboard), stopped again by killing exactly the processes of
these two nodes: never ``ray stop``, which would stop every Ray node on the machine (another
user's included).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RAY = Path(sys.executable).with_name("ray")
#: Small enough for a 2-core CI machine shared with other jobs (Ray's minimum is ~75 MB).
OBJECT_STORE_BYTES = 100 * 1024 * 1024


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _node_ports() -> list[str]:
    names = (
        "--object-manager-port",
        "--node-manager-port",
        "--dashboard-agent-listen-port",
        "--dashboard-agent-grpc-port",
        "--runtime-env-agent-port",
        "--metrics-export-port",
    )
    return [
        arg
        for name, port in zip(names, _free_ports(len(names)), strict=True)
        for arg in (name, str(port))
    ]


def _processes_under(root: str) -> set[int]:
    """Pids whose command line names ``root`` (the nodes' temp dir), and all their descendants."""
    parents: dict[int, int] = {}
    matched: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        parents[pid] = int(stat.rsplit(")", 1)[1].split()[1])
        if root.encode() in cmdline:
            matched.add(pid)
    found = set(matched)
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in found and pid not in found:
                found.add(pid)
                grew = True
    found.discard(os.getpid())
    return found


@dataclass
class RayCluster:
    """Two local Ray nodes; ``address`` is the head's ``HOST:PORT``."""

    address: str
    root: str
    env: dict[str, str]
    startup_seconds: float
    nodes: int = 2
    _stopped: bool = field(default=False, repr=False)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL, exactly the processes of these nodes; remove their temp dir."""
        if self._stopped:
            return
        self._stopped = True
        pids = _processes_under(self.root)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in pids):
                time.sleep(0.1)
            pids = {p for p in pids if Path(f"/proc/{p}").exists()}
            if not pids:
                break
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster() -> RayCluster:
    """Start the head and a second node; both import this checkout (``PYTHONPATH``)."""
    if not RAY.exists():
        raise RuntimeError(f"the ray command is not installed next to {sys.executable}")
    # Short path: Ray's unix sockets live under the temp dir and must stay below 108 bytes.
    root = tempfile.mkdtemp(prefix="vflray", dir="/tmp")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    common = [
        "--num-cpus",
        "1",
        "--object-store-memory",
        str(OBJECT_STORE_BYTES),
        "--node-ip-address",
        "127.0.0.1",
        "--disable-usage-stats",
    ]
    (port, client_port) = _free_ports(2)
    address = f"127.0.0.1:{port}"
    start = time.monotonic()
    cluster = RayCluster(address=address, root=root, env=env, startup_seconds=0.0)
    try:
        for args in (
            [
                "--head",
                "--port",
                str(port),
                "--ray-client-server-port",
                str(client_port),
                "--include-dashboard",
                "false",
                "--temp-dir",
                f"{root}/h",
            ],
            ["--address", address, "--temp-dir", f"{root}/w"],
        ):
            subprocess.run(
                [str(RAY), "start", *args, *common, *_node_ports()],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=180,
            )
    except BaseException:
        cluster.stop()
        raise
    cluster.startup_seconds = time.monotonic() - start
    return cluster
