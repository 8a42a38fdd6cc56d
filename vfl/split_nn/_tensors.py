"""DataFrame to tensor conversion and the default MLP builder."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from vfl.errors import VflError

__all__ = ["features", "embedding_dim", "build_mlp"]


def features(df: pd.DataFrame, columns: Sequence[str] | None) -> torch.Tensor:
    """``df[columns]`` (all columns when ``None``) as a float32 tensor; non-numeric is an error."""
    cols = list(df.columns) if columns is None else list(columns)
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise VflError(f"missing feature columns: {', '.join(map(str, missing))}")
    frame = df[cols]
    bad = [c for c in cols if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise VflError(f"non-numeric feature columns: {', '.join(map(str, bad))}")
    values = frame.to_numpy(dtype=np.float32)
    if not np.all(np.isfinite(values)):
        raise VflError("feature columns contain NaN or infinity")
    return torch.from_numpy(np.ascontiguousarray(values))


def embedding_dim(module: nn.Module, n_inputs: int) -> int:
    """Output width of ``module`` on ``n_inputs`` features (one dummy row, no gradient)."""
    was_training = module.training
    module.eval()
    with torch.no_grad():
        out = module(torch.zeros(1, n_inputs))
    module.train(was_training)
    if out.ndim != 2:
        raise VflError(f"bottom model must return a 2-D batch, got {out.ndim}-D")
    return int(out.shape[1])


def build_mlp(
    sizes: Sequence[int], *, final_activation: bool = True, seed: int | None = None
) -> nn.Sequential:
    """``Linear(sizes[0], sizes[1]) -> ReLU -> ...``; ReLU after the last layer when asked.

    >>> build_mlp([10, 16, 4])
    Sequential(
      (0): Linear(in_features=10, out_features=16, bias=True)
      (1): ReLU()
      (2): Linear(in_features=16, out_features=4, bias=True)
      (3): ReLU()
    )
    """
    if len(sizes) < 2 or any(s < 1 for s in sizes):
        raise VflError("an MLP needs at least two positive layer sizes")
    if seed is not None:
        torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if final_activation or i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)
