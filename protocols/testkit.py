"""The protocol test kit: run N party functions to completion, each in its own thread.

>>> from protocols.memory import InMemoryNetwork
>>> net = InMemoryNetwork(["bank", "retailer"], job_id="doc", seed=0)
>>> def bank(ch):
...     ch.send("retailer", "ping", 41)
...     return ch.recv("retailer", "pong")
>>> def retailer(ch):
...     ch.send("bank", "pong", ch.recv("bank", "ping") + 1)
...     return "done"
>>> run_parties({"bank": bank, "retailer": retailer}, network=net, timeout=10.0)
{'bank': 42, 'retailer': 'done'}
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from protocols.channel import Channel
from protocols.errors import ChannelTimeout, LocalProtocolError

__all__ = ["Network", "PartyFunction", "run_parties"]

PartyFunction = Callable[[Channel], Any]


class Network(Protocol):
    """What :func:`run_parties` needs from a network (``InMemoryNetwork`` provides it)."""

    def channel(self, party: str) -> Channel: ...

    def kill(self, party: str) -> None: ...


def run_parties(
    functions: Mapping[str, PartyFunction],
    *,
    network: Network,
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Run ``fn(network.channel(name))`` for every party in its own thread; return the results.

    When a party raises, it is killed on the network (so peers waiting on it fail fast with
    ``PeerDown`` instead of hanging) and, once every thread has finished, the *first* exception
    is re-raised with a note naming the party. If parties are still running after ``timeout``
    seconds they are killed and :class:`ChannelTimeout` names them.
    """
    if not functions:
        raise LocalProtocolError("run_parties needs at least one party function")
    results: dict[str, Any] = {}
    failures: list[tuple[str, BaseException]] = []
    lock = threading.Lock()
    channels = {name: network.channel(name) for name in functions}

    def body(name: str, fn: PartyFunction) -> None:
        try:
            value = fn(channels[name])
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            with lock:
                failures.append((name, exc))
            network.kill(name)
        else:
            with lock:
                results[name] = value

    threads = {
        name: threading.Thread(target=body, args=(name, fn), name=f"party-{name}", daemon=True)
        for name, fn in functions.items()
    }
    for thread in threads.values():
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads.values():
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = sorted(name for name, thread in threads.items() if thread.is_alive())
    if stuck:
        for name in stuck:
            network.kill(name)
        for name in stuck:
            threads[name].join(5.0)
        with lock:
            first = failures[0] if failures else None
        detail = f" (first failure: {first[0]}: {first[1]!r})" if first else ""
        raise ChannelTimeout(
            f"parties still running after {timeout:g} s: {', '.join(stuck)}{detail}"
        )
    if failures:
        name, exc = failures[0]
        exc.add_note(f"raised by party {name!r}")
        raise exc
    return {name: results[name] for name in functions}
