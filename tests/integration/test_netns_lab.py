"""The multi-host test's skip reasons: each one names what is missing."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.integration import _netns


def test_not_root_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert _netns.unavailable() == "needs root to create network namespaces (running as uid 1000)"


def test_missing_ip_command_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert _netns.unavailable() == "the `ip` command (iproute2) is not installed"


def test_refused_netns_add_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, ...]] = []

    def refuse(*args: str) -> subprocess.CompletedProcess[str]:
        calls.append(args)
        return subprocess.CompletedProcess(
            ["ip", *args], 1, "", "mount --make-shared /run/netns failed: Operation not permitted"
        )

    monkeypatch.setattr(_netns, "_ip", refuse)
    lab = _netns.Lab()
    with pytest.raises(_netns.LabUnavailable, match=r"^`ip netns add` failed: mount .*permitted$"):
        lab.open()
    assert calls == [("netns", "add", lab.switch)] and lab.namespaces == []
