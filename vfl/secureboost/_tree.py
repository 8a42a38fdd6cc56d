"""One boosted tree as flat arrays over heap-numbered nodes (root 0, children ``2i+1``, ``2i+2``).

The label party's view: a node is unused, a leaf (weight), a split on one of its own features
(feature index, threshold, missing side), or a split of a feature party (party index, record id:
the threshold stays with that party).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["UNUSED", "LEAF", "OWN", "REMOTE", "Forest"]

UNUSED, LEAF, OWN, REMOTE = 0, 1, 2, 3
_MAX_FLOAT = float(np.finfo(np.float64).max)


@dataclass
class Forest:
    """All trees of a model, stacked: every array is ``trees x (2^(max_depth+1) - 1)``."""

    max_depth: int
    kind: npt.NDArray[np.int8]
    owner: npt.NDArray[np.int32]
    ref: npt.NDArray[np.int64]
    threshold: npt.NDArray[np.float64]
    missing_left: npt.NDArray[np.bool_]
    value: npt.NDArray[np.float64]
    output: npt.NDArray[np.int32]

    @classmethod
    def empty(cls, max_depth: int) -> Forest:
        m = (1 << (max_depth + 1)) - 1
        return cls(
            max_depth,
            np.zeros((0, m), np.int8),
            np.zeros((0, m), np.int32),
            np.zeros((0, m), np.int64),
            np.zeros((0, m)),
            np.zeros((0, m), bool),
            np.zeros((0, m)),
            np.zeros(0, np.int32),
        )

    @property
    def nodes(self) -> int:
        return (1 << (self.max_depth + 1)) - 1

    def __len__(self) -> int:
        return int(self.kind.shape[0])

    def new_tree(self, output: int) -> int:
        """Append an empty tree for margin column ``output``; its index."""
        m = self.nodes

        def grow(a: npt.NDArray[Any], fill: Any) -> npt.NDArray[Any]:
            return np.concatenate([a, np.full((1, m), fill, dtype=a.dtype)])

        self.kind, self.owner = grow(self.kind, UNUSED), grow(self.owner, -1)
        self.ref, self.threshold = grow(self.ref, 0), grow(self.threshold, 0.0)
        self.missing_left, self.value = grow(self.missing_left, False), grow(self.value, 0.0)
        self.output = np.concatenate([self.output, np.asarray([output], np.int32)])
        return len(self) - 1

    def truncate(self, trees: int) -> None:
        """Keep the first ``trees`` trees (early stopping)."""
        for name in ("kind", "owner", "ref", "threshold", "missing_left", "value", "output"):
            setattr(self, name, getattr(self, name)[:trees])

    def to_json(self) -> dict[str, Any]:
        return {
            "max_depth": self.max_depth,
            "kind": self.kind.tolist(),
            "owner": self.owner.tolist(),
            "ref": self.ref.tolist(),
            "threshold": np.minimum(self.threshold, _MAX_FLOAT).tolist(),
            "missing_left": self.missing_left.tolist(),
            "value": self.value.tolist(),
            "output": self.output.tolist(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Forest:
        depth = int(data["max_depth"])
        m = (1 << (depth + 1)) - 1

        def arr(key: str, dtype: Any) -> npt.NDArray[Any]:
            a = np.asarray(data[key], dtype=dtype)
            return a.reshape(-1, m) if key != "output" else a.reshape(-1)

        return cls(
            depth,
            arr("kind", np.int8),
            arr("owner", np.int32),
            arr("ref", np.int64),
            arr("threshold", np.float64),
            arr("missing_left", bool),
            arr("value", np.float64),
            arr("output", np.int32),
        )
