"""The secure interactive layer: one feature party's share of ``z = h W_H`` and its gradients.

Notation (docs/protocols/split_nn.md has the full sequence and leakage table): ``H`` is a
feature party with embedding ``h`` (``b x d``), ``G`` the label party. ``W_H = W_G + A`` where the
label party holds ``W_G`` and the feature party holds ``A``; nobody holds ``W_H``. ``[[.]]_H`` is
encryption under ``H``'s key, ``[[.]]_G`` under ``G``'s. Masks ``eps, M, rho`` are drawn by the
evaluator's backend (:meth:`Evaluator.mask`: Paillier integers with 40 bits of slack, CKKS floats
uniform in ``[-R, R]``, ``R`` = ``crypto.mask``); ``N`` is uniform in ``[-R_w, R_w]``
(``crypto.weight_noise``).

Forward:   H -> G  [[h]]_H, then (training) [[h^T]]_H
           G -> H  [[h W_G + eps]]_H;  H -> G  v = (h W_G + eps) + h A;  G: z_H = v - eps
Backward:  G -> H  [[delta~]]_G;       H -> G  [[delta~ A^T + M]]_G
           G -> H  (delta~ A^T + M) + delta~ W_G^T;  H: dL/dh = that - M = delta~ W_H^T
           G -> H  [[h^T delta + rho]]_H and the rate lr
           H -> G  (h^T delta + rho) + N / lr;  H: A += N;  G: W_G -= lr (h^T delta + N / lr)
so ``W_G + A`` moves by ``-lr h^T delta``: plain SGD on ``W_H``, as in FATE 1.x's interactive
layer (``acc_noise``), with the input gradient computed under the label party's key instead of
revealing ``W_H``. With momentum ``mu`` (linear, so it works on shares): G keeps
``v_G = mu v_G + (h^T delta + N / lr)`` and sets ``W_G -= lr v_G``; H keeps
``n = mu n + N / lr`` and sets ``A += lr n``; then ``W_G + A`` moves by ``-lr v`` with
``v = mu v + h^T delta``, heavy-ball SGD on ``W_H`` (with ``mu = 0``: ``A += N`` as above).
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

__all__ = ["FeatureShare", "LabelShare", "share_init"]

FloatArray = npt.NDArray[np.float64]


def share_init(
    shape: tuple[int, int], *, fan_in: int, rng: RandomSource | None = None
) -> FloatArray:
    """One of two additive shares of the interactive layer's initial weights: ``U[-s, s]`` with
    ``s = sqrt(1 / (2 fan_in))``.

    ``fan_in`` is the whole layer's input width (the label party's own embedding plus every
    feature party's). Each share has variance ``1 / (6 fan_in)``, so their sum has
    ``1 / (3 fan_in)``: the variance of ``U[-1/sqrt(fan_in), 1/sqrt(fan_in)]``, torch's default
    ``nn.Linear(fan_in, m)`` init, which the centralised model of the same architecture uses.
    Nobody knows the sum (each party draws its share from its own CSPRNG).
    """
    if fan_in < 1:
        raise VflError("the interactive layer needs a positive input width")
    return uniform(shape, bound=math.sqrt(1.0 / (2.0 * fan_in)), rng=rng)


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
        momentum: float = 0.0,
    ) -> None:
        self.peer = peer
        self.momentum = momentum
        self.share = share  # A (d x m)
        self.noise_velocity = np.zeros_like(share)  # n = mu n + N / lr (momentum on the noise)
        self._owner = owner
        self._evaluator = evaluator
        self._crypto = crypto
        self._rng = rng
        self._rows = 0

    def forward(self, channel: Channel, h: FloatArray, *, train: bool) -> None:
        """Send ``[[h]]`` (and ``[[h^T]]`` when training), answer with ``u + h A``.

        ``[[h^T]]`` is encrypted and sent after ``[[h]]``, while the label party multiplies.
        """
        channel.send(self.peer, "snn/h", self._owner.encrypt_forward(h))
        if train:
            channel.send(self.peer, "snn/ht", self._owner.encrypt_transposed(h))
        self._rows = h.shape[0]
        reply = self._owner.reveal(channel.recv(self.peer, "snn/u"), h @ self.share)
        channel.send(self.peer, "snn/v", reply)

    def backward(self, channel: Channel) -> FloatArray:
        """Return ``dL/dh`` (with the label party's defence noise) and update the share ``A``."""
        if not self._rows:
            raise VflError("backward before forward")
        ct_delta = channel.recv(self.peer, "snn/dz")
        product = self._evaluator.matmul(ct_delta, self.share.T, rows=self._rows)
        masked, handle = self._evaluator.mask(product)
        channel.send(self.peer, "snn/q", masked)
        grad_h = handle.unmask(channel.recv(self.peer, "snn/gh"))
        ct_gw = channel.recv(self.peer, "snn/gw")
        lr = float(channel.recv(self.peer, "snn/lr"))
        if not lr > 0:
            raise VflError("label party sent a non-positive interactive rate")
        noise = uniform(self.share.shape, bound=self._crypto.weight_noise, rng=self._rng)
        channel.send(self.peer, "snn/gwr", self._owner.reveal(ct_gw, noise / lr))
        self.noise_velocity = self.momentum * self.noise_velocity + noise / lr
        self.share = self.share + lr * self.noise_velocity
        self._rows = 0
        return grad_h


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
        momentum: float = 0.0,
    ) -> None:
        self.peer = peer
        self.momentum = momentum
        self.share = share  # W_G (d x m)
        self.velocity = np.zeros_like(share)  # v_G = mu v_G + (h^T delta + N / lr)
        self._evaluator = evaluator
        self._crypto = crypto
        self._rng = rng
        self._train = False
        self._rows = 0

    def forward(self, channel: Channel, *, rows: int, train: bool) -> FloatArray:
        """Receive ``[[h]]``, return ``z_H = h W_H`` (``rows x m``)."""
        ct = channel.recv(self.peer, "snn/h")
        self._rows = rows
        self._train = train
        masked, handle = self._evaluator.mask(self._evaluator.matmul(ct, self.share, rows=rows))
        channel.send(self.peer, "snn/u", masked)
        return handle.unmask(channel.recv(self.peer, "snn/v"))

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
        """Send the feature party its (defended) input gradient and update ``W_G``.

        The weight gradient ``[[h^T delta + rho]]`` is computed while the feature party computes
        its masked ``[[delta~ A^T + M]]`` (the two parties work at the same time).
        """
        if not self._train or delta.shape[0] != self._rows:
            raise VflError("backward before a training forward")
        channel.send(self.peer, "snn/dz", ct_delta_defended)
        ct_t = channel.recv(self.peer, "snn/ht")
        product = self._evaluator.weight_grad(ct_t, delta, dim=self.share.shape[0])
        masked_gw, handle = self._evaluator.mask(product)
        reply = owner.reveal(channel.recv(self.peer, "snn/q"), delta_defended @ self.share.T)
        channel.send(self.peer, "snn/gh", reply)
        channel.send(self.peer, "snn/gw", masked_gw)
        channel.send(self.peer, "snn/lr", float(lr))
        back = handle.unmask(channel.recv(self.peer, "snn/gwr"))
        if back.shape != self.share.shape:
            raise VflError(f"{self.peer} sent a weight-gradient share of shape {back.shape}")
        self.velocity = self.momentum * self.velocity + back
        self.share = self.share - lr * self.velocity
        self._train = False
