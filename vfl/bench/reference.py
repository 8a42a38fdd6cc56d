"""Centralised reference models on joined features: what a federated model is compared with.

These exist only to measure the federated models against in the demo and the benchmarks; they
see every party's features at once, which no party of a real federation can do.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["centralised_lr_auc", "centralised_mlp_auc"]

FloatArray = NDArray[np.float64]


def centralised_lr_auc(
    x_train: FloatArray, y_train: FloatArray, x_test: FloatArray, y_test: FloatArray
) -> float:
    """Test AUC of scikit-learn's ``LogisticRegression`` on standardised joined features."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(x_train, y_train)
    return float(roc_auc_score(y_test, model.predict_proba(x_test)[:, 1]))


def centralised_mlp_auc(
    parts_train: list[FloatArray],
    y_train: FloatArray,
    parts_test: list[FloatArray],
    y_test: FloatArray,
    *,
    bottom_layers: list[int],
    embedding_dim: int,
    interactive_units: int,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
) -> float:
    """Test AUC of a torch MLP with the split network's total architecture, trained centrally.

    One bottom MLP per party's feature block (``n_i -> bottom_layers -> embedding_dim``), the
    concatenated embeddings through ``Linear(-> interactive_units)``, ReLU, ``Linear(-> 1)``;
    Adam, the same epochs and batch size as the federated run.
    """
    import torch
    from sklearn.metrics import roc_auc_score
    from torch import nn

    torch.manual_seed(seed)

    def mlp(sizes: list[int]) -> nn.Sequential:
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        return nn.Sequential(*layers)

    bottoms = nn.ModuleList(mlp([p.shape[1], *bottom_layers, embedding_dim]) for p in parts_train)
    head = nn.Sequential(
        nn.Linear(embedding_dim * len(parts_train), interactive_units),
        nn.ReLU(),
        nn.Linear(interactive_units, 1),
    )
    opt = torch.optim.Adam([*bottoms.parameters(), *head.parameters()], lr=learning_rate)

    def forward(xs: list[torch.Tensor]) -> torch.Tensor:
        out: torch.Tensor = head(torch.cat([b(x) for b, x in zip(bottoms, xs, strict=True)], 1))
        return out.reshape(-1)

    xs = [torch.tensor(p, dtype=torch.float32) for p in parts_train]
    y = torch.tensor(y_train, dtype=torch.float32)
    for epoch in range(epochs):
        order = np.random.default_rng([seed, epoch]).permutation(len(y))
        for s in range(0, len(y), batch_size):
            idx = torch.from_numpy(order[s : s + batch_size])
            loss = nn.functional.binary_cross_entropy_with_logits(
                forward([x[idx] for x in xs]), y[idx]
            )
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
    with torch.no_grad():
        scores = forward([torch.tensor(p, dtype=torch.float32) for p in parts_test]).numpy()
    return float(roc_auc_score(y_test, scores))
