"""Torch models for horizontal training: any ``nn.Module`` with one logit output, as a flat array.

FedProx adds ``mu/2 * ||theta - theta_g||^2`` to the loss (Li et al., MLSys 2020, eq. 2).
"""

from __future__ import annotations

import numpy as np
import torch

from vfl.errors import ConfigError
from vfl.horizontal._models import LocalModel, LocalTraining, ModelFactory

__all__ = ["TorchModel", "mlp_factory"]


class TorchModel:
    """A ``torch.nn.Module`` with one logit output, trained with SGD on ``BCEWithLogitsLoss``.

    The flat array is ``torch.nn.utils.parameters_to_vector`` of the module's parameters
    (float32, in ``module.parameters()`` order); FedProx adds ``mu/2 * ||theta - theta_g||^2`` to
    the loss. Call ``torch.set_num_threads`` yourself: the model does not change global state.
    """

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module

    def get_params(self) -> np.ndarray:
        with torch.no_grad():
            vec = torch.nn.utils.parameters_to_vector(self.module.parameters())
        out: np.ndarray = vec.detach().cpu().numpy().astype(np.float32).copy()
        return out

    def set_params(self, params: np.ndarray) -> None:
        current = sum(p.numel() for p in self.module.parameters())
        if params.ndim != 1 or params.size != current:
            raise ConfigError(f"expected {current} parameters, got shape {params.shape}")
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(
                torch.tensor(np.asarray(params, dtype=np.float32)),  # a copy, never a view
                self.module.parameters(),
            )

    def train(
        self, x: np.ndarray, y: np.ndarray, *, settings: LocalTraining, rng: np.random.Generator
    ) -> None:
        anchor = [p.detach().clone() for p in self.module.parameters()]
        opt = torch.optim.SGD(
            self.module.parameters(), lr=settings.learning_rate, weight_decay=settings.l2
        )
        loss_fn = torch.nn.BCEWithLogitsLoss()
        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        yt = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))
        self.module.train()
        n = x.shape[0]
        for _ in range(settings.epochs):
            order = torch.from_numpy(rng.permutation(n))
            for start in range(0, n, settings.batch_size):
                idx = order[start : start + settings.batch_size]
                opt.zero_grad()
                loss = loss_fn(self.module(xt[idx]).reshape(-1), yt[idx])
                if settings.mu:
                    prox = sum(
                        ((p - a) ** 2).sum()
                        for p, a in zip(self.module.parameters(), anchor, strict=True)
                    )
                    loss = loss + 0.5 * settings.mu * prox
                loss.backward()
                opt.step()

    def per_sample_grads(self, params: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Gradient of each row's ``BCEWithLogitsLoss`` at the flat ``params``, as ``(rows,
        parameters)`` float64 in the flat order: ``torch.func.vmap`` of ``torch.func.grad`` over
        the rows, with the parameters bound by ``torch.func.functional_call`` (for DP-SGD).
        The module must not mix rows (no batch norm)."""
        named = list(self.module.named_parameters())
        flat = torch.tensor(np.asarray(params, dtype=np.float32))
        if flat.numel() != sum(p.numel() for _, p in named):
            raise ConfigError(f"expected {sum(p.numel() for _, p in named)} parameters")
        values: dict[str, torch.Tensor] = {}
        offset = 0
        for name, p in named:
            values[name] = flat[offset : offset + p.numel()].view_as(p)
            offset += p.numel()
        module = self.module

        def row_loss(
            theta: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor
        ) -> torch.Tensor:
            logit = torch.func.functional_call(module, theta, (xi.unsqueeze(0),)).reshape(-1)
            return torch.nn.functional.binary_cross_entropy_with_logits(logit, yi.reshape(1))

        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        yt = torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))
        module.eval()
        grads = torch.func.vmap(torch.func.grad(row_loss), in_dims=(None, 0, 0))(values, xt, yt)
        rows = torch.cat([grads[name].reshape(xt.shape[0], -1) for name, _ in named], dim=1)
        out: np.ndarray = rows.detach().numpy().astype(np.float64)
        return out

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        self.module.eval()
        with torch.no_grad():
            logits = self.module(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
        out: np.ndarray = torch.sigmoid(logits.reshape(-1)).numpy().astype(np.float64)
        return out


def mlp_factory(*, hidden: tuple[int, ...] = (32,), seed: int = 0) -> ModelFactory:
    """Factory of ReLU MLPs ``n_features -> hidden... -> 1``, initialised from ``seed``."""
    if any(h < 1 for h in hidden):
        raise ConfigError(f"hidden layer sizes must be >= 1, got {hidden}")

    def build(n_features: int) -> LocalModel:
        gen = torch.Generator().manual_seed(seed)
        layers: list[torch.nn.Module] = []
        width = n_features
        for h in hidden:
            layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
            width = h
        layers.append(torch.nn.Linear(width, 1))
        module = torch.nn.Sequential(*layers)
        with torch.no_grad():
            for p in module.parameters():
                bound = 1.0 / np.sqrt(max(1, p.shape[-1]))
                p.copy_(torch.rand(p.shape, generator=gen) * 2 * bound - bound)
        return TorchModel(module)

    return build
