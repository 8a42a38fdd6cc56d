"""One way to write a file so that a reader never sees half of it: write next to it, then rename.

Every file the engine writes for others to read (status and result files, models, checkpoints,
accountant state, reports, exports, aligned CSVs) goes through :func:`atomic_path` or
:func:`atomic_write`: the data goes to a temporary file in the target's directory (created mode
0600, so nothing is readable by others while it is written), is flushed to disk, and
``os.replace`` moves it onto the target in one step. On any error the temporary file is removed
and the target is left as it was.

>>> import pathlib, tempfile
>>> target = pathlib.Path(tempfile.mkdtemp()) / "state.json"
>>> atomic_write(target, '{"round": 1}')
>>> target.read_text()
'{"round": 1}'
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "atomic_write"]


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, mode: int = 0o600) -> Iterator[Path]:
    """A temporary path next to ``path`` to write by any means (``torch.save``, ``np.savez``,
    ``df.to_csv``); when the block ends without error it is synced and renamed onto ``path``
    with permissions ``mode``, else removed."""
    target = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(
    path: str | os.PathLike[str], data: bytes | str, *, mode: int = 0o600, encoding: str = "utf-8"
) -> None:
    """Write ``data`` (text is encoded with ``encoding``) to ``path`` atomically (module doc)."""
    raw = data.encode(encoding) if isinstance(data, str) else data
    with atomic_path(path, mode=mode) as tmp:
        tmp.write_bytes(raw)
