"""A throwaway network of Linux network namespaces for multi-host tests.

One namespace per host, all wired to a bridge that lives in a namespace of its own (the
"switch"), so nothing is added to the machine's own network namespace::

    switch ns:  br0 --- p0 ==veth== eth0 (host ns 0)  10.231.0.1/24
                    \\-- p1 ==veth== eth0 (host ns 1)  10.231.0.2/24
                    \\-- ...

Names are unique per run (process id and random bits), so parallel runs cannot collide, and
:meth:`Lab.close` deletes every namespace it made (which also removes their links) after killing
any process still running inside them. :func:`unavailable` says why this machine cannot do it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType

__all__ = ["Lab", "LabUnavailable", "unavailable"]


class LabUnavailable(Exception):
    """The machine does not allow the namespaces (the message says which step failed)."""


def unavailable() -> str | None:
    """Why network namespaces cannot be made here, or ``None`` when they can be tried."""
    if os.geteuid() != 0:
        return f"needs root to create network namespaces (running as uid {os.geteuid()})"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    return None


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)


def _check(result: subprocess.CompletedProcess[str]) -> None:
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(result.args)}` failed: {result.stderr.strip()}")


@dataclass
class Lab:
    """A bridged segment; :meth:`add_host` adds a namespace plugged into it and returns its index.

    Host ``i``'s default address is ``address(i)`` (``<subnet>.<i + 1>``) in a /24.
    """

    subnet: str = "10.231.0"
    prefix: str = field(default_factory=lambda: f"vfl{os.getpid()}{secrets.token_hex(3)}")
    namespaces: list[str] = field(default_factory=list, init=False)
    hosts: int = field(default=0, init=False)

    @property
    def switch(self) -> str:
        return f"{self.prefix}-sw"

    def ns(self, i: int) -> str:
        return f"{self.prefix}-h{i}"

    def address(self, i: int) -> str:
        return f"{self.subnet}.{i + 1}"

    # -- building ------------------------------------------------------------------------------
    def _add_namespace(self, name: str) -> None:
        result = _ip("netns", "add", name)
        if result.returncode != 0:
            raise LabUnavailable(f"`ip netns add` failed: {result.stderr.strip() or 'no message'}")
        self.namespaces.append(name)
        _check(_ip("-n", name, "link", "set", "lo", "up"))

    def open(self) -> Lab:
        """Make the switch namespace with its bridge ``br0``."""
        try:
            self._add_namespace(self.switch)
            _check(_ip("-n", self.switch, "link", "add", "br0", "type", "bridge"))
            _check(_ip("-n", self.switch, "link", "set", "br0", "up"))
        except BaseException:
            self.close()
            raise
        return self

    def add_host(self, *, address: str | None = None) -> int:
        """A new namespace (loopback up) wired to the bridge by a veth pair, ``eth0`` on its side.

        ``address`` is ``a.b.c.d/len`` (default ``address(i)/24``); an address in another subnet
        leaves the host without a route to the others. Returns the host's index ``i``.
        """
        i = self.hosts
        self._add_namespace(self.ns(i))
        self.hosts += 1
        port = f"p{i}"
        result = _ip(
            "-n", self.switch, "link", "add", port, "type", "veth",
            "peer", "name", "eth0", "netns", self.ns(i),
        )  # fmt: skip
        if result.returncode != 0:
            raise LabUnavailable(f"cannot create a veth pair: {result.stderr.strip()}")
        _check(_ip("-n", self.switch, "link", "set", port, "master", "br0", "up"))
        self.add_address(i, address or f"{self.address(i)}/24")
        _check(_ip("-n", self.ns(i), "link", "set", "eth0", "up"))
        return i

    def add_address(self, i: int, address: str) -> None:
        """Give host ``i``'s ``eth0`` another address (``a.b.c.d/len``)."""
        _check(_ip("-n", self.ns(i), "addr", "add", address, "dev", "eth0"))

    # -- using ---------------------------------------------------------------------------------
    def command(self, i: int, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside host ``i``'s namespace."""
        return ["ip", "netns", "exec", self.ns(i), *argv]

    def counters(self, i: int) -> dict[str, int]:
        """Host ``i``'s ``eth0`` byte and packet counters (``rx_bytes``, ``tx_bytes``, ...)."""
        result = _ip("-n", self.ns(i), "-s", "-j", "link", "show", "dev", "eth0")
        _check(result)
        stats = json.loads(result.stdout)[0]["stats64"]
        return {
            "rx_bytes": int(stats["rx"]["bytes"]),
            "tx_bytes": int(stats["tx"]["bytes"]),
            "rx_packets": int(stats["rx"]["packets"]),
            "tx_packets": int(stats["tx"]["packets"]),
        }

    # -- tearing down --------------------------------------------------------------------------
    def close(self) -> None:
        """Kill what still runs in the namespaces, then delete them (and so their links)."""
        for name in reversed(self.namespaces):
            pids = _ip("netns", "pids", name).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            _ip("netns", "del", name)
        self.namespaces.clear()

    def __enter__(self) -> Lab:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
