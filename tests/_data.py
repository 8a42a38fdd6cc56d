"""The data every test reads: FATE's small example files kept in ``tests/data/fate``.

No test reads the data sets beside the repository (a user's clone has none;
``tests/test_project.py`` checks it). The pandas-read files are gzipped copies; :func:`fate_csv`
finds a file by FATE's name in either form, and the default-credit vertical pair in the package's
bundled ``vfl/data``. FATE's four default-credit horizontal files are rebuilt from that pair by
:func:`write_default_credit_homo`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from vfl._datasets import BUNDLED, fate_file

__all__ = ["BUNDLED", "FATE", "fate_csv", "read_fate", "write_default_credit_homo"]

#: The folder of FATE's small example files (see its README for attribution).
FATE = Path(__file__).resolve().parent / "data" / "fate"


def fate_csv(name: str) -> Path:
    """The path of FATE's file ``name`` (e.g. ``"breast_hetero_guest.csv"``), gzipped or not."""
    path = fate_file(FATE, name)
    if not path.is_file():
        raise FileNotFoundError(f"test data file {name} is not in {FATE} nor in {BUNDLED}")
    return path


def read_fate(name: str, **kwargs: Any) -> pd.DataFrame:
    """``pandas.read_csv`` of FATE's file ``name``, wherever :func:`fate_csv` finds it."""
    return pd.read_csv(fate_csv(name), **kwargs)


def write_default_credit_homo(folder: Path) -> Path:
    """Write FATE's ``default_credit_homo_{guest,host_1,host_2,test}.csv`` into ``folder``.

    The rows are the bundled vertical pair joined on ``id`` (the guest's ``x0..x12``, then the
    host's ``x0..x9`` renamed ``x13..x22``), put in FATE's files in FATE's order by
    ``default_credit_homo_ids.csv.gz``. Returns ``folder``.
    """
    guest = read_fate("default_credit_hetero_guest.csv")
    host = read_fate("default_credit_hetero_host.csv")
    host = host.rename(columns={f"x{i}": f"x{i + 13}" for i in range(host.shape[1] - 1)})
    joined = guest.merge(host, on="id", validate="one_to_one").set_index("id")
    parts = read_fate("default_credit_homo_ids.csv")
    folder.mkdir(parents=True, exist_ok=True)
    for file, ids in parts.groupby("file", sort=False)["id"]:
        rows = joined.loc[ids.to_numpy()].reset_index()
        rows.to_csv(folder / f"default_credit_homo_{file}.csv", index=False)
    return folder
