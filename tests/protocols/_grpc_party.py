"""Run one party of a protocol in this OS process over gRPC + mutual TLS (used by the tests).

    python -m tests.protocols._grpc_party --config F --party bank --job J --fn module:function

Prints one line ``RESULT {json}`` on stdout: ``{"ok": true, "value": ...}`` or
``{"ok": false, "error": "PeerDown", "message": ...}``, plus the envelopes this party rejected
per reason and its memory high-water mark.
"""

from __future__ import annotations

import protocols  # first: sets the TLS 1.3 policy before grpc is imported

# isort: split

import argparse
import importlib
import json
import sys
from typing import Any

import protocols.grpc
from protocols.config import load_federation

__all__ = ["main", "memory_kib"]


def memory_kib(field: str) -> int:
    """``VmRSS`` / ``VmHWM`` of this process in KiB, from /proc."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--party", required=True)
    parser.add_argument("--job", required=True)
    parser.add_argument("--fn", required=True, help="module:function taking the channel")
    parser.add_argument("--heartbeat", type=float, default=30.0)
    parser.add_argument("--recv-timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    module_name, _, attr = args.fn.partition(":")
    fn = getattr(importlib.import_module(module_name), attr)
    config = load_federation(args.config)
    node = protocols.grpc.PartyNode(config, args.party, heartbeat_interval=args.heartbeat).start()
    channel = node.channel(args.job, default_timeout=args.recv_timeout)
    out: dict[str, Any]
    try:
        out = {"ok": True, "value": fn(channel)}
    except Exception as exc:  # noqa: BLE001 - reported to the parent test as JSON
        out = {"ok": False, "error": type(exc).__name__, "message": str(exc)}
    out["rejections"] = channel.rejections
    out["vm_hwm_kib"] = memory_kib("VmHWM")
    print("RESULT " + json.dumps(out), flush=True)
    channel.close()
    node.stop(grace=1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
