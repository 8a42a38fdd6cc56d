"""The one atomic-write helper: the target is replaced whole or left as it was."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from vfl._atomic import atomic_path, atomic_write


def test_atomic_write_replaces_the_target_whole_with_mode_0600(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_text("old")
    atomic_write(target, '{"round": 2}')
    assert target.read_text() == '{"round": 2}'
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]  # no temporary left


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "model.pt"
    target.write_bytes(b"previous model")
    with pytest.raises(RuntimeError, match="disk full"), atomic_path(target) as tmp:
        tmp.write_bytes(b"half a mod")
        raise RuntimeError("disk full")
    assert target.read_bytes() == b"previous model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]


def test_the_temporary_sits_next_to_the_target_and_is_private_while_written(
    tmp_path: Path,
) -> None:
    target = tmp_path / "aligned.csv"
    with atomic_path(target, mode=0o644) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".aligned.csv.")
        assert stat.S_IMODE(os.stat(tmp).st_mode) == 0o600
        tmp.write_text("id\n1\n")
        assert not target.exists()
    assert target.read_text() == "id\n1\n"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o644
