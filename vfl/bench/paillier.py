"""``vfl bench paillier``: crypto.paillier next to python-paillier (phe), measured in the same run.

For each key size (2048 and 3072 bits by default) it reports ops/s and values/s for encrypt,
decrypt, add, scalar multiply and ``X.T @ enc``, each next to phe's own API on the same key,
with the ratio ours / phe (the cheaper comparisons alternate ours and phe and keep the best of
each, so both see the same load). phe is timed on fewer values (it is ~100x slower) and its rate is
reported per value, so the ratio compares rates; for ``X.T @ enc`` phe runs on a slice of the
rows and its time is scaled linearly to the full matrix (said in ``phe_scaled_from``). A last
section measures the process-parallel paths with 2 workers against 1 (2048 bits only).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from vfl.bench.common import best_of, machine_info

__all__ = ["add_arguments", "run"]

# (name, ratio key path, target) checked at 2048 bits: the "Must show".
_TARGETS = (
    ("encrypt, obfuscation paid now (djn), vs phe encrypt", ("encrypt", "djn"), 10.0),
    ("encrypt online from a pool, vs phe encrypt", ("encrypt", "pool_online"), 100.0),
    ("decrypt packed values/s, vs phe decrypt", ("decrypt", "packed"), 20.0),
    ("X.T @ enc (30000 x 10), vs phe loop", ("xt_matmul", "ours"), 5.0),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bits",
        type=int,
        nargs="+",
        default=[2048, 3072],
        choices=(2048, 3072, 4096),
        help="key sizes",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smaller sizes (a smoke run, ~1 minute)"
    )
    parser.add_argument(
        "--no-parallel", action="store_true", help="skip the 2-process vs 1-process section"
    )


def _pair(ours: Callable[[], Any], phe: Callable[[], Any], repeat: int = 2) -> tuple[float, float]:
    """Best times of ``ours`` and ``phe``, measured alternately so both see the same load."""
    best_ours = best_phe = float("inf")
    for _ in range(repeat):
        best_ours = min(best_ours, best_of(ours, repeat=1))
        best_phe = min(best_phe, best_of(phe, repeat=1))
    return best_ours, best_phe


def _entry(
    *, ours_s: float, ours_ops: int, ours_values: int, phe_s: float, phe_ops: int, phe_values: int
) -> dict[str, Any]:
    ours_vps = ours_values / ours_s
    phe_vps = phe_values / phe_s
    return {
        "ours_ops_per_s": ours_ops / ours_s,
        "ours_values_per_s": ours_vps,
        "phe_ops_per_s": phe_ops / phe_s,
        "phe_values_per_s": phe_vps,
        "ratio": ours_vps / phe_vps,
        "ours_values": ours_values,
        "phe_values": phe_values,
    }


def _bench_size(bits: int, quick: bool, rng: np.random.Generator) -> dict[str, Any]:
    from crypto.paillier import ObfuscatorPool, generate_keypair

    t0 = time.perf_counter()
    pub, priv = generate_keypair(bits)
    out: dict[str, Any] = {"keygen_seconds": time.perf_counter() - t0}
    phe_pub, phe_priv = pub.to_phe(), priv.to_phe()
    slow = 8 if quick else 20  # values for the full-exponentiation paths (ours and phe)
    fast = 400 if quick else 2000  # values for the cheap paths

    # -- encrypt ------------------------------------------------------------------------------
    xs = rng.normal(size=fast)
    enc_out: dict[str, Any] = {}

    def phe_encrypt() -> None:
        for v in xs[:slow]:
            phe_pub.encrypt(float(v))

    std_s, phe_s = _pair(lambda: pub.encrypt(xs[:slow]), phe_encrypt)
    enc_out["standard"] = _entry(
        ours_s=std_s, ours_ops=slow, ours_values=slow, phe_s=phe_s, phe_ops=slow, phe_values=slow
    )
    crt_n = slow * 4
    crt_s, phe_crt_s = _pair(lambda: priv.encrypt(xs[:crt_n]), phe_encrypt)
    enc_out["owner_crt"] = _entry(
        ours_s=crt_s,
        ours_ops=crt_n,
        ours_values=crt_n,
        phe_s=phe_crt_s,
        phe_ops=slow,
        phe_values=slow,
    )
    table_s = best_of(lambda: pub.djn_state(), repeat=1)
    djn_n = fast // 4
    djn_s, phe_djn_s = _pair(lambda: pub.encrypt(xs[:djn_n], obfuscator="djn"), phe_encrypt)
    enc_out["djn"] = _entry(
        ours_s=djn_s,
        ours_ops=djn_n,
        ours_values=djn_n,
        phe_s=phe_djn_s,
        phe_ops=slow,
        phe_values=slow,
    )
    enc_out["djn"]["table_build_seconds_once_per_key"] = table_s
    pool = ObfuscatorPool(pub, obfuscator="djn")
    fill_s = best_of(lambda: pool.fill(2 * fast), repeat=1)
    online_s, phe_pool_s = _pair(lambda: pub.encrypt(xs, pool=pool), phe_encrypt)
    enc_out["pool_online"] = _entry(
        ours_s=online_s,
        ours_ops=fast,
        ours_values=fast,
        phe_s=phe_pool_s,
        phe_ops=slow,
        phe_values=slow,
    )
    enc_out["pool_online"]["offline_fill_values_per_s"] = 2 * fast / fill_s
    enc_out["default"] = "standard (DCR only); djn is an explicit option (stronger assumption)"
    out["encrypt"] = enc_out

    # -- decrypt ------------------------------------------------------------------------------
    enc = pub.encrypt(xs, obfuscator="djn")
    phe_nums = enc[:slow].to_phe().tolist()
    dec_n = slow * 2
    ours_s, phe_s = _pair(
        lambda: priv.decrypt(enc[:dec_n]), lambda: [phe_priv.decrypt(v) for v in phe_nums]
    )
    packed = pub.encrypt_packed(xs, obfuscator="djn")
    packed_s = best_of(lambda: priv.decrypt(packed), repeat=1)
    out["decrypt"] = {
        "unpacked": _entry(
            ours_s=ours_s,
            ours_ops=dec_n,
            ours_values=dec_n,
            phe_s=phe_s,
            phe_ops=slow,
            phe_values=slow,
        ),
        "packed": _entry(
            ours_s=packed_s,
            ours_ops=packed.ciphertext_count,
            ours_values=fast,
            phe_s=phe_s,
            phe_ops=slow,
            phe_values=slow,
        ),
    }
    out["decrypt"]["packed"]["slots_per_ciphertext"] = packed.layout.slots(pub)
    out["decrypt"]["packed"]["layout"] = (
        "48-bit slots: 32 value bits + 16 bits headroom, precision 16"
    )

    # -- add ----------------------------------------------------------------------------------
    enc2 = pub.encrypt(rng.normal(size=fast), obfuscator="djn")
    phe_a, phe_b = enc[: fast // 4].to_phe().tolist(), enc2[: fast // 4].to_phe().tolist()
    ours_s, phe_s = _pair(
        lambda: enc + enc2, lambda: [a + b for a, b in zip(phe_a, phe_b, strict=True)], repeat=3
    )
    out["add"] = _entry(
        ours_s=ours_s,
        ours_ops=fast,
        ours_values=fast,
        phe_s=phe_s,
        phe_ops=fast // 4,
        phe_values=fast // 4,
    )

    # -- scalar multiply (float scalars, 32-bit fixed point; negatives through the inverse) -----
    ks = rng.normal(size=fast)
    mul_n = fast // 4
    phe_nums = enc[: slow * 2].to_phe().tolist()
    ours_s, phe_s = _pair(
        lambda: enc[:mul_n] * ks[:mul_n],
        lambda: [v * float(k) for v, k in zip(phe_nums, ks, strict=False)],
    )
    out["scalar_multiply"] = _entry(
        ours_s=ours_s,
        ours_ops=mul_n,
        ours_values=mul_n,
        phe_s=phe_s,
        phe_ops=slow * 2,
        phe_values=slow * 2,
    )

    # -- X.T @ enc ----------------------------------------------------------------------------
    rows, cols = (3000, 10) if quick else (30000, 10)
    phe_rows = 60 if quick else 300
    x_mat = rng.normal(size=(rows, cols))
    t0 = time.perf_counter()
    big = pub.encrypt(rng.normal(size=rows), obfuscator="djn")
    big_enc_s = time.perf_counter() - t0
    ours_s = best_of(lambda: x_mat.T @ big, repeat=1)
    phe_col = big[:phe_rows].to_phe().tolist()

    def phe_xt() -> None:
        for j in range(cols):
            acc = phe_col[0] * float(x_mat[0, j])
            for i in range(1, phe_rows):
                acc = acc + phe_col[i] * float(x_mat[i, j])

    phe_s = best_of(phe_xt, repeat=1) * rows / phe_rows
    xt = _entry(
        ours_s=ours_s,
        ours_ops=1,
        ours_values=rows * cols,
        phe_s=phe_s,
        phe_ops=1,
        phe_values=rows * cols,
    )
    xt["shape"] = [rows, cols]
    xt["phe_scaled_from"] = f"phe timed on {phe_rows} of {rows} rows, scaled linearly"
    xt["ours_seconds"] = ours_s
    xt["phe_seconds_scaled"] = phe_s
    out["xt_matmul"] = {
        "ours": xt,
        "djn_encrypt_of_the_vector": {"values": rows, "seconds": big_enc_s},
    }
    return out


def _timed_multiexp_chunk(*args: Any) -> float:
    """Runs in a worker: CPU seconds of one multi-exponentiation chunk (see ``_cpu_split``)."""
    from crypto.paillier import _parallel

    start = time.process_time()
    _parallel._multiexp_chunk(*args)
    return time.process_time() - start


def _cpu_split(enc: Any, x_mat: np.ndarray, scale_bits: int) -> dict[str, float]:
    """CPU seconds of ``X.T @ enc`` serially vs. per worker when split in 2 (the same split as
    ``rmatmul(processes=2)``): on a shared machine wall time cannot show the speedup, CPU time can.
    """
    from crypto.paillier import _parallel

    bases = enc.raw_ciphertexts()
    scalars = np.rint(np.ldexp(x_mat.T, scale_bits)).astype(np.int64)
    nsq = enc.public_key.nsquare
    start = time.process_time()
    enc.rmatmul(x_mat.T)
    serial_cpu = time.process_time() - start
    mod_bytes = int(nsq).to_bytes((int(nsq).bit_length() + 7) // 8, "big")
    half = -(-len(bases) // 2)
    calls = []
    for lo in (0, half):
        data, width = _parallel._to_bytes(bases[lo : lo + half])
        part = np.ascontiguousarray(scalars[:, lo : lo + half], dtype="<i8")
        calls.append((_timed_multiexp_chunk, data, width, part.tobytes(), part.shape, mod_bytes))
    worker_cpu = _parallel._submit_all(2, calls)
    start = time.process_time()
    enc.rmatmul(x_mat.T, processes=2)
    parent_cpu = time.process_time() - start  # split, transfer and combine, in the caller
    return {
        "serial_cpu_s": serial_cpu,
        "parallel_caller_cpu_s": parent_cpu,
        "worker_cpu_s": worker_cpu,
        "cpu_bound_speedup": serial_cpu / (parent_cpu + max(worker_cpu)),
    }


def _bench_parallel(quick: bool, rng: np.random.Generator) -> dict[str, Any]:
    from crypto.paillier import generate_keypair, shutdown_workers

    pub, priv = generate_keypair(2048)
    n_enc = 40 if quick else 200
    xs = rng.normal(size=n_enc)
    t0 = time.perf_counter()
    pub.encrypt(xs[:8], processes=2)  # starts the 2 workers (kept for the calls below)
    start_s = time.perf_counter() - t0
    one = best_of(lambda: pub.encrypt(xs), repeat=2)
    two = best_of(lambda: pub.encrypt(xs, processes=2), repeat=2)
    rows = 3000 if quick else 30000
    x_mat = rng.normal(size=(rows, 10))
    enc = pub.encrypt(rng.normal(size=rows), obfuscator="djn")
    mm_one = best_of(lambda: enc.rmatmul(x_mat.T), repeat=2)
    mm_two = best_of(lambda: enc.rmatmul(x_mat.T, processes=2), repeat=2)
    cpu = _cpu_split(enc, x_mat, enc.encoding.precision_bits)
    dec = enc[: n_enc * 4]
    dec_one = best_of(lambda: priv.decrypt(dec), repeat=2)
    dec_two = best_of(lambda: priv.decrypt(dec, processes=2), repeat=2)
    shutdown_workers()
    return {
        "bits": 2048,
        "note": (
            "2 worker processes vs the serial path, best of 2, workers already started "
            "(worker start-up reported separately); the machine is shared, so a wall-clock "
            "speedup needs two idle cores: see load_average. xt_matmul.cpu_split gives the "
            "load-independent view: serial CPU seconds / (the caller's CPU seconds in the "
            "parallel call + the busiest worker's CPU seconds)"
        ),
        "load_average_1min_at_start": os.getloadavg()[0],
        "worker_start_seconds": start_s,
        "encrypt_standard": {"values": n_enc, "one_s": one, "two_s": two, "speedup": one / two},
        "xt_matmul": {
            "shape": [rows, 10],
            "one_s": mm_one,
            "two_s": mm_two,
            "speedup": mm_one / mm_two,
            "cpu_split": cpu,
        },
        "decrypt": {
            "values": n_enc * 4,
            "one_s": dec_one,
            "two_s": dec_two,
            "speedup": dec_one / dec_two,
        },
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    import phe

    rng = np.random.default_rng(0)
    quick = bool(getattr(args, "quick", False))
    sizes: dict[str, Any] = {}
    for bits in args.bits:
        sizes[str(bits)] = _bench_size(bits, quick, rng)
    result: dict[str, Any] = {
        "benchmark": "paillier",
        "baseline": f"python-paillier (phe) {getattr(phe, '__version__', '1.5')}, same keys, same run",
        "machine": machine_info(),
        "quick": quick,
        "note": (
            "single core unless stated; rates per value; ratio = ours / phe values per second; "
            "taken on a shared machine (other jobs running): see load_average_1min"
        ),
        "load_average_1min": os.getloadavg()[0],
        "sizes": sizes,
    }
    if not getattr(args, "no_parallel", False):
        result["parallel"] = _bench_parallel(quick, rng)
    if "2048" in sizes:
        checks = []
        for name, (op, variant), target in _TARGETS:
            ratio = sizes["2048"][op][variant]["ratio"]
            checks.append(
                {"target": name, "ratio": ratio, "required": target, "met": ratio >= target}
            )
        if "parallel" in result:
            cpu_speedup = result["parallel"]["xt_matmul"]["cpu_split"]["cpu_bound_speedup"]
            checks.append(
                {
                    "target": "X.T @ enc on 2 processes vs 1, CPU split (load-independent)",
                    "ratio": cpu_speedup,
                    "required": 1.8,
                    "met": cpu_speedup >= 1.8,
                }
            )
            speedup = result["parallel"]["xt_matmul"]["speedup"]
            checks.append(
                {
                    "target": "X.T @ enc on 2 processes vs 1, wall clock (needs 2 idle cores)",
                    "ratio": speedup,
                    "required": 1.8,
                    "met": speedup >= 1.8,
                }
            )
        result["targets_2048"] = checks
    return result
