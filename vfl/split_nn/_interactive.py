"""The secure interactive layer: one feature party's share of ``z = h W_H`` and its gradients.

Notation (docs/protocols/split_nn.md has the full sequence and leakage table): ``H`` is a
feature party with embedding ``h`` (``b x d``), ``G`` the label party. ``W_H = W_G + A`` where the
label party holds ``W_G`` and the feature party holds ``A``; nobody holds ``W_H``. ``[[.]]_H`` is
encryption under ``H``'s key, ``[[.]]_G`` under ``G``'s. Masks ``eps, M, rho`` are uniform in
``[-R, R]`` (``R`` = ``crypto.mask``), ``N`` uniform in ``[-R_w, R_w]`` (``crypto.weight_noise``).

Forward:   H -> G  [[h]]_H (and [[h^T]]_H for CKKS)
           G -> H  [[h W_G + eps]]_H;  H -> G  v = (h W_G + eps) + h A;  G: z_H = v - eps
Backward:  G -> H  [[delta~]]_G;       H -> G  [[delta~ A^T + M]]_G
           G -> H  (delta~ A^T + M) + delta~ W_G^T;  H: dL/dh = that - M = delta~ W_H^T
           G -> H  [[h^T delta + rho]]_H and the rate lr
           H -> G  (h^T delta + rho) + N / lr;  H: A += N;  G: W_G -= lr (h^T delta + N / lr)
so ``W_G + A`` moves by ``-lr h^T delta``: plain SGD on ``W_H``, as in FATE 1.x's interactive
layer (``acc_noise``), with the input gradient computed under the label party's key instead of
revealing ``W_H``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from crypto.random import RandomSource
from protocols.channel import Channel
from vfl.errors import VflError
from vfl.split_nn._backends import Evaluator, KeyOwner
from vfl.split_nn._config import CryptoConfig
from vfl.split_nn._random import uniform

__all__ = ["FeatureShare", "LabelShare", "xavier_half"]

FloatArray = npt.NDArray[np.float64]


def xavier_half(shape: tuple[int, int], *, rng: RandomSource | None = None) -> FloatArray:
    """One of two additive shares of a Xavier-uniform init: ``U[-s, s]``, ``s = sqrt(3 / fan)``.

    ``fan = fan_in + fan_out``; each share has half the Xavier variance ``2 / fan``, so the sum
    of two shares has exactly Xavier's variance.
    """
    bound = math.sqrt(3.0 / (shape[0] + shape[1]))
    return uniform(shape, bound=bound, rng=rng)


class FeatureShare:
    """The feature party's side of the interactive layer with the label party ``peer``."""

    def __init__(
        self,
        *,
        peer: str,
        owner: KeyOwner,
        evaluator: Evaluator,
        share: FloatArray,
        crypto: CryptoConfig,
        rng: RandomSource | None = None,
    ) -> None:
        self.peer = peer
        self.share = share  # A (d x m)
        self._owner = owner
        self._evaluator = evaluator
        self._crypto = crypto
        self._rng = rng

    def forward(self, channel: Channel, h: FloatArray, *, train: bool) -> None:
        """Send ``[[h]]`` (and ``[[h^T]]`` when training), answer with ``u + h A``."""
        if train:
            ct, ct_t = self._owner.encrypt_pair(h)
        else:
            ct, ct_t = self._owner.encrypt(h), None
        channel.send(self.peer, "snn/h", ct)
        if train:
            channel.send(self.peer, "snn/ht", ct_t)
        u = self._owner.decrypt(channel.recv(self.peer, "snn/u"))
        if u.shape != (h.shape[0], self.share.shape[1]):
            raise VflError(f"label party returned a {u.shape} forward share")
        channel.send(self.peer, "snn/v", u + h @ self.share)

    def backward(self, channel: Channel) -> FloatArray:
        """Return ``dL/dh`` (with the label party's defence noise) and update the share ``A``."""
        ct_delta = channel.recv(self.peer, "snn/dz")
        mask = uniform(
            (self._rows(ct_delta), self.share.shape[0]), bound=self._crypto.mask, rng=self._rng
        )
        channel.send(
            self.peer,
            "snn/q",
            self._evaluator.add_plain(self._evaluator.matmul(ct_delta, self.share.T), mask),
        )
        grad_h = np.asarray(channel.recv(self.peer, "snn/gh"), dtype=np.float64) - mask
        masked_gw = self._owner.decrypt(channel.recv(self.peer, "snn/gw"))
        lr = float(channel.recv(self.peer, "snn/lr"))
        if masked_gw.shape != self.share.shape or not lr > 0:
            raise VflError("label party sent a malformed weight-gradient share")
        noise = uniform(self.share.shape, bound=self._crypto.weight_noise, rng=self._rng)
        channel.send(self.peer, "snn/gwr", masked_gw + noise / lr)
        self.share = self.share + noise
        return grad_h

    @staticmethod
    def _rows(ct: Any) -> int:
        shape = getattr(ct, "shape", None)
        if not shape or len(shape) != 2:
            raise VflError("label party sent a malformed encrypted gradient")
        return int(shape[0])


class LabelShare:
    """The label party's side of the interactive layer with one feature party ``peer``."""

    def __init__(
        self,
        *,
        peer: str,
        evaluator: Evaluator,
        share: FloatArray,
        crypto: CryptoConfig,
        rng: RandomSource | None = None,
    ) -> None:
        self.peer = peer
        self.share = share  # W_G (d x m)
        self._evaluator = evaluator
        self._crypto = crypto
        self._rng = rng
        self._ct: Any = None
        self._ct_t: Any = None

    def forward(self, channel: Channel, *, rows: int, train: bool) -> FloatArray:
        """Receive ``[[h]]``, return ``z_H = h W_H`` (``rows x m``)."""
        self._ct = channel.recv(self.peer, "snn/h")
        self._ct_t = channel.recv(self.peer, "snn/ht") if train else None
        shape = getattr(self._ct, "shape", None)
        if shape != (rows, self.share.shape[0]):
            raise VflError(
                f"{self.peer} sent an embedding of shape {shape}, expected "
                f"{(rows, self.share.shape[0])}"
            )
        eps = uniform((rows, self.share.shape[1]), bound=self._crypto.mask, rng=self._rng)
        channel.send(
            self.peer,
            "snn/u",
            self._evaluator.add_plain(self._evaluator.matmul(self._ct, self.share), eps),
        )
        v = np.asarray(channel.recv(self.peer, "snn/v"), dtype=np.float64)
        if v.shape != eps.shape:
            raise VflError(f"{self.peer} sent a forward share of shape {v.shape}")
        return v - eps

    def backward(
        self,
        channel: Channel,
        *,
        owner: KeyOwner,
        ct_delta_defended: Any,
        delta_defended: FloatArray,
        delta: FloatArray,
        lr: float,
    ) -> None:
        """Send the feature party its (defended) input gradient and update ``W_G``."""
        if self._ct is None:
            raise VflError("backward before forward")
        channel.send(self.peer, "snn/dz", ct_delta_defended)
        q = owner.decrypt(channel.recv(self.peer, "snn/q"))
        if q.shape != (delta.shape[0], self.share.shape[0]):
            raise VflError(f"{self.peer} sent a masked gradient of shape {q.shape}")
        channel.send(self.peer, "snn/gh", q + delta_defended @ self.share.T)
        rho = uniform(self.share.shape, bound=self._crypto.mask, rng=self._rng)
        channel.send(
            self.peer,
            "snn/gw",
            self._evaluator.add_plain(
                self._evaluator.weight_grad(self._ct, self._ct_t, delta), rho
            ),
        )
        channel.send(self.peer, "snn/lr", float(lr))
        back = np.asarray(channel.recv(self.peer, "snn/gwr"), dtype=np.float64)
        if back.shape != self.share.shape:
            raise VflError(f"{self.peer} sent a weight-gradient share of shape {back.shape}")
        self.share = self.share - lr * (back - rho)
        self._ct = self._ct_t = None
