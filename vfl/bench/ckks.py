"""``vfl bench ckks``: packed CKKS batches against one TenSEAL CKKSVector per row, same run.

For each batch size (default 256 x 16 and 4096 x 16) it times encrypt, serialise, load, the
product by a 16 x 8 plaintext matrix, the sum of two encrypted batches, adding a plaintext mask
and decryption, and reports bytes per value and the max error against numpy.

Baseline ("one CKKSVector per row"): each row encrypted alone, the product by ``vector.mm(W)``
(TenSEAL's diagonal method, which needs Galois keys in the public context). Its cost is linear
in the rows, so it is measured on ``--baseline-rows`` rows and scaled to the full batch (the
JSON says so); its bytes per value are exact.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import tenseal as ts

from crypto.ckks import PRESETS, CKKSBatch, CKKSContext
from vfl.bench.common import best_of, machine_info

__all__ = ["add_arguments", "run"]

BASELINE = "one TenSEAL CKKSVector per row (vector.mm for the product)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rows", type=int, nargs="+", default=[256, 4096], help="batch rows (several sizes)"
    )
    parser.add_argument("--dim", type=int, default=16, help="batch columns (embedding size)")
    parser.add_argument("--out-dim", type=int, default=8, help="columns of the plaintext matrix")
    parser.add_argument(
        "--baseline-rows", type=int, default=32, help="rows the per-row baseline is timed on"
    )
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random test data")


def _engine(
    owner: CKKSContext, peer: CKKSContext, x: np.ndarray, w: np.ndarray, *, repeat: int
) -> dict[str, Any]:
    mask = np.random.default_rng(1).uniform(-100.0, 100.0, size=(x.shape[0], w.shape[1]))
    enc = CKKSBatch.encrypt(peer, x)
    data = enc.to_bytes()
    product = enc @ w
    product_bytes = product.to_bytes()
    at_owner = CKKSBatch.from_bytes(product_bytes, context=owner)
    seconds = {
        "encrypt": best_of(lambda: CKKSBatch.encrypt(peer, x), repeat=repeat),
        "serialise": best_of(enc.to_bytes, repeat=repeat),
        "load": best_of(lambda: CKKSBatch.from_bytes(data, context=peer), repeat=repeat),
        "matmul_plain": best_of(lambda: enc @ w, repeat=repeat),
        "add": best_of(lambda: enc + enc, repeat=repeat),
        "add_plain": best_of(lambda: product + mask, repeat=repeat),
        "decrypt": best_of(at_owner.decrypt, repeat=repeat),
    }
    return {
        "seconds": seconds,
        "ciphertexts_in": enc.n_ciphertexts,
        "ciphertexts_out": product.n_ciphertexts,
        "bytes_in": len(data),
        "bytes_per_input_value": len(data) / x.size,
        "bytes_per_output_value": len(product_bytes) / (x.shape[0] * w.shape[1]),
        "max_abs_error_round_trip": float(
            np.max(np.abs(CKKSBatch.from_bytes(data, context=owner).decrypt() - x))
        ),
        "max_abs_error_matmul": float(np.max(np.abs(at_owner.decrypt() - x @ w))),
        "max_abs_error_matmul_plus_mask": float(
            np.max(np.abs((product + mask).decrypt(secret_context=owner) - (x @ w + mask)))
        ),
    }


def _timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _baseline(
    ctx: Any, x: np.ndarray, w: np.ndarray, *, measured_rows: int, repeat: int
) -> dict[str, Any]:
    rows = x[:measured_rows]
    w_list = w.tolist()
    vectors = [ts.ckks_vector(ctx, row.tolist()) for row in rows]
    blobs = [v.serialize() for v in vectors]
    # The slow product is timed once; the cheaper steps are best of ``repeat``.
    t_mm, products = _timed(lambda: [v.mm(w_list) for v in vectors])
    decrypted = [p.decrypt() for p in products]
    product_bytes = sum(len(p.serialize()) for p in products)
    measured = {
        "encrypt": best_of(lambda: [ts.ckks_vector(ctx, r.tolist()) for r in rows], repeat=repeat),
        "serialise": best_of(lambda: [v.serialize() for v in vectors], repeat=repeat),
        "load": best_of(lambda: [ts.ckks_vector_from(ctx, b) for b in blobs], repeat=repeat),
        "matmul_plain": t_mm,
        "add": best_of(lambda: [v + v for v in vectors], repeat=repeat),
        "decrypt": best_of(lambda: [p.decrypt() for p in products], repeat=repeat),
    }
    scale = x.shape[0] / len(rows)
    return {
        "measured_rows": len(rows),
        "scaled_to_rows": x.shape[0],
        "seconds": {op: t * scale for op, t in measured.items()},
        "ciphertexts_in": x.shape[0],
        "bytes_per_input_value": sum(len(b) for b in blobs) / rows.size,
        "bytes_per_output_value": product_bytes / (len(rows) * w.shape[1]),
        "max_abs_error_matmul": float(np.max(np.abs(np.array(decrypted) - rows @ w))),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    preset = PRESETS[args.preset]
    t_keys, owner = _timed(lambda: CKKSContext.generate(preset=preset))
    public_bytes = owner.to_bytes()
    peer = CKKSContext.from_bytes(public_bytes)

    base_ctx = ts.context(
        ts.SCHEME_TYPE.CKKS,
        poly_modulus_degree=preset.poly_modulus_degree,
        coeff_mod_bit_sizes=list(preset.coeff_mod_bit_sizes),
    )
    base_ctx.global_scale = float(2**preset.scale_bits)
    t_galois, _ = _timed(base_ctx.generate_galois_keys)
    base_public = base_ctx.serialize(
        save_public_key=True, save_secret_key=False, save_galois_keys=True, save_relin_keys=False
    )

    rng = np.random.default_rng(args.seed)
    sizes = []
    for n_rows in args.rows:
        x = rng.normal(size=(n_rows, args.dim))
        w = rng.normal(size=(args.dim, args.out_dim))
        engine = _engine(owner, peer, x, w, repeat=args.repeat)
        baseline = _baseline(
            base_ctx, x, w, measured_rows=min(n_rows, args.baseline_rows), repeat=args.repeat
        )
        ratios = {
            f"{op}_speedup": baseline["seconds"][op] / engine["seconds"][op]
            for op in baseline["seconds"]
        }
        ratios["bytes_per_input_value_reduction"] = (
            baseline["bytes_per_input_value"] / engine["bytes_per_input_value"]
        )
        sizes.append(
            {
                "rows": n_rows,
                "dim": args.dim,
                "out_dim": args.out_dim,
                "engine": engine,
                "baseline": baseline,
                "ratios": ratios,
            }
        )
    return {
        "benchmark": "ckks",
        "machine": machine_info(),
        "preset": {
            "name": preset.name,
            "poly_modulus_degree": preset.poly_modulus_degree,
            "coeff_mod_bit_sizes": list(preset.coeff_mod_bit_sizes),
            "scale_bits": preset.scale_bits,
            "security_bits": preset.security_bits,
        },
        "baseline": BASELINE,
        "baseline_note": "per-row baseline timed on baseline.measured_rows rows, scaled linearly",
        "setup": {
            "keygen_seconds": t_keys,
            "public_context_bytes": len(public_bytes),
            "baseline_galois_keygen_seconds": t_galois,
            "baseline_public_context_bytes": len(base_public),
        },
        "sizes": sizes,
    }
