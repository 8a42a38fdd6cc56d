"""Where the public data sets live: ``../shared/data/fate`` beside the repository by default.

``VFL_SHARED_DATA`` overrides it (a folder holding FATE's example files, see that folder's
README). The default-credit files the demo uses are bundled in ``vfl/data`` as well.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["shared_data_dir"]


def shared_data_dir() -> Path:
    """The folder of FATE's example data: ``$VFL_SHARED_DATA`` or ``<repo>/../shared/data/fate``."""
    override = os.environ.get("VFL_SHARED_DATA")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "fate"
