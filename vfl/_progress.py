"""Progress bars on stderr (tqdm), shared by ``vfl psi`` and ``vfl run``'s PSI and split NN phases.

Like hetero LR's epoch bar: on stderr, never on stdout (which carries ``--json``'s one object),
and not made at all when the caller asks for none (``--json``). A bar shows this party's own
work only (its PSI point multiplications, its epochs), nothing it learnt from a peer.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["count_bar", "epoch_bar"]


@contextmanager
def count_bar(desc: str, *, unit: str, enabled: bool) -> Iterator[Callable[[int, int], None]]:
    """A bar fed ``update(done, total)`` (PSI's ``progress`` callback); a no-op when disabled."""
    if not enabled:
        yield lambda done, total: None
        return
    from tqdm import tqdm

    bar: Any = tqdm(total=0, desc=desc, unit=unit, file=sys.stderr)

    def update(done: int, total: int) -> None:
        if bar.total != total:
            bar.total = total
            bar.refresh()
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        bar.close()


@contextmanager
def epoch_bar(desc: str, *, epochs: int | None, enabled: bool) -> Iterator[Callable[[], None]]:
    """A bar advanced by one per call (one epoch); a no-op when disabled."""
    if not enabled:
        yield lambda: None
        return
    from tqdm import tqdm

    bar: Any = tqdm(total=epochs, desc=desc, unit="epoch", file=sys.stderr)
    try:
        yield lambda: bar.update(1)
    finally:
        bar.close()
