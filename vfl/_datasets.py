"""Where the public data sets live: ``../shared/data/fate`` beside the repository by default.

``VFL_SHARED_DATA`` overrides it (a folder holding FATE's example files, see that folder's
README). The default-credit files the demo uses are bundled in ``vfl/data`` as well, and
:func:`fate_file` finds a file in any of its forms: as named, gzipped beside it, or bundled.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["BUNDLED", "fate_file", "shared_data_dir"]

#: The data bundled with the package (the default-credit vertical pair, gzipped).
BUNDLED = Path(__file__).resolve().parent / "data"


def shared_data_dir() -> Path:
    """The folder of FATE's example data: ``$VFL_SHARED_DATA`` or ``<repo>/../shared/data/fate``."""
    override = os.environ.get("VFL_SHARED_DATA")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "fate"


def fate_file(data_dir: Path | str, name: str) -> Path:
    """The path of FATE's example file ``name`` (e.g. ``breast_hetero_guest.csv``) for ``data_dir``.

    The first of ``data_dir/name``, ``data_dir/name.gz`` and the bundled ``vfl/data/name.gz``
    that exists (pandas reads either form); ``data_dir/name`` when none does, so that the
    caller's error names the file it looked for first.
    """
    folder = Path(data_dir)
    for candidate in (folder / name, folder / f"{name}.gz", BUNDLED / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return folder / name
