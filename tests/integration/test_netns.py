"""A hetero-LR job between two hosts: each party in its own Linux network namespace.

The bank (10.231.0.1) and the retailer (10.231.0.2) are namespaces on a bridged segment (see
:mod:`tests.integration._netns`); `vfl certs init --address` makes their certificates, and each
party runs ``vfl run`` inside its namespace on a sample of the bundled default-credit data
(Paillier 1024 with ``--insecure-small-keys`` to stay fast). Checked: both results, the traffic
on the veth links, the IP SAN as a standard TLS client sees it, and an intruder in a third
namespace: unreachable without a route, refused by mutual TLS with a certificate of another CA.
Needs root and iproute2 (`.ci/run` installs it); skips saying which is missing otherwise.
"""

from __future__ import annotations

import ipaddress
import json
import os
import selectors
import subprocess
import sys
from collections.abc import Iterator, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from cryptography import x509

from protocols.config import load_federation
from protocols.pki import init_federation
from tests.integration._netns import Lab, LabUnavailable, unavailable

pytestmark = [pytest.mark.slow, pytest.mark.grpc]

ROOT = Path(__file__).resolve().parents[2]
ENV = dict(os.environ, PYTHONPATH=str(ROOT), GRPC_VERBOSITY="ERROR", PYTHONWARNINGS="ignore")
PORT = 50051
SAMPLE = 2500  # customers drawn from the bundled 30,000
MODEL = {
    "epochs": 3,
    "batch_size": 256,
    "learning_rate": 0.6,
    "lr_schedule": "inverse_time",
    "approximation": "local",
    "validation_fraction": 0.0,
    "seed": 0,
}


@pytest.fixture
def lab() -> Iterator[Lab]:
    reason = unavailable()
    if reason is not None:
        pytest.skip(reason)
    net = Lab()
    try:
        net.open()
    except LabUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield net
    finally:
        net.close()


def _bundled(name: str) -> pd.DataFrame:
    with resources.as_file(resources.files("vfl") / "data" / name) as path:
        return pd.read_csv(path)


def _write_data(root: Path) -> int:
    """Each party's CSV (a different share of the sampled customers, own row order) and the
    job file; returns the number of customers both hold."""
    bank = _bundled("default_credit_hetero_guest.csv.gz")
    retailer = _bundled("default_credit_hetero_host.csv.gz")
    rng = np.random.default_rng(7)
    ids = rng.choice(bank["id"].to_numpy(), size=SAMPLE, replace=False)
    bank_ids = set(ids[rng.random(SAMPLE) >= 0.08].tolist())
    retailer_ids = set(ids[rng.random(SAMPLE) >= 0.10].tolist())
    bank[bank["id"].isin(bank_ids)].sample(frac=1.0, random_state=1).to_csv(
        root / "bank.csv", index=False
    )
    retailer[retailer["id"].isin(retailer_ids)].sample(frac=1.0, random_state=2).to_csv(
        root / "retailer.csv", index=False
    )
    lines = ["[job]", 'id = "netns-hetero-lr"', 'type = "hetero_lr"', 'label_party = "bank"', ""]
    lines += ["[parties.bank]", 'data = "bank.csv"', 'id_column = "id"', 'label_column = "y"', ""]
    lines += ["[parties.retailer]", 'data = "retailer.csv"', 'id_column = "id"', ""]
    lines += ["[crypto]", 'scheme = "paillier"', "key_bits = 1024", ""]
    lines += ["[evaluation]", "test_fraction = 0.2", "seed = 0", ""]
    lines += ["[model]", *(f"{k} = {json.dumps(v)}" for k, v in MODEL.items()), ""]
    (root / "job.toml").write_text("\n".join(lines))
    return len(bank_ids & retailer_ids)


def _reference_auc(root: Path) -> float:
    """scikit-learn on the joined shared rows, split as ``vfl run`` splits them."""
    import psi
    from vfl.bench.reference import centralised_lr_auc
    from vfl.jobs import agreed_test_rows

    bank = pd.read_csv(root / "bank.csv")
    retailer = pd.read_csv(root / "retailer.csv")
    retailer = retailer.rename(columns={c: f"r.{c}" for c in retailer.columns if c != "id"})
    joined = bank.merge(retailer, on="id")
    keys = [psi.normalise_id(v) or b"" for v in joined["id"].tolist()]
    joined = joined.iloc[sorted(range(len(keys)), key=lambda i: keys[i])].reset_index(drop=True)
    test = agreed_test_rows(len(joined), fraction=0.2, seed=0)
    x = joined.drop(columns=["id", "y"]).to_numpy(dtype=np.float64)
    y = joined["y"].to_numpy(dtype=np.float64)
    return centralised_lr_auc(x[~test], y[~test], x[test], y[test])


def _run(argv: Sequence[str], *, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=timeout, check=False
    )


def _probe(lab: Lab, host: int, *args: str) -> dict[str, Any]:
    """``tests.integration._probe`` run inside ``host``'s namespace; its JSON answer."""
    done = _run(lab.command(host, [sys.executable, "-m", "tests.integration._probe", *args]))
    assert done.returncode == 0, done.stderr[-2000:]
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def _first_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            return ""
    return proc.stdout.readline()


def _ip_sans(cert: Path) -> set[str]:
    san = x509.load_pem_x509_certificate(cert.read_bytes()).extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    )
    return {str(a) for a in san.value.get_values_for_type(x509.IPAddress)}


def test_hetero_lr_across_network_namespaces(lab: Lab, tmp_path: Path) -> None:
    bank, retailer = lab.add_host(), lab.add_host()
    addr = {"bank": lab.address(bank), "retailer": lab.address(retailer)}
    shared = _write_data(tmp_path)

    # Certificates for the two hosts' addresses, made the way docs/deploy.md says.
    fed_dir = tmp_path / "fed"
    made = _run(
        [sys.executable, "-m", "vfl.cli", "certs", "init", "--parties", "bank,retailer",
         "--out", str(fed_dir), "--json",
         *(f"--address={p}={a}:{PORT}" for p, a in addr.items())]
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    for party, ip in addr.items():
        assert ip in _ip_sans(fed_dir / party / "tls.pem")
        assert json.loads(made.stdout)["parties"][party]["address"] == f"{ip}:{PORT}"
    federation = fed_dir / "federation.toml"
    # A node's own entry in its copy of the file is where it listens: the bank listens on all
    # its addresses, as a node behind NAT or in a container does (docs/deploy.md).
    own = fed_dir / "federation-bank.toml"
    own.write_text(
        federation.read_text().replace(f'"{addr["bank"]}:{PORT}"', f'"0.0.0.0:{PORT}"', 1)
    )
    assert load_federation(own).party("bank").address == f"0.0.0.0:{PORT}"
    configs = {"bank": own, "retailer": federation}

    # The job: each party's `vfl run` inside its own namespace.
    hosts = {"bank": bank, "retailer": retailer}
    before = {party: lab.counters(host) for party, host in hosts.items()}
    argv = {
        party: [sys.executable, "-m", "vfl.cli.run", str(tmp_path / "job.toml"),
                "--config", str(configs[party]), "--party", party,
                "--work-dir", str(tmp_path / party), "--json", "--insecure-small-keys",
                "--timeout", "120"]
        for party in hosts
    }  # fmt: skip
    procs = {
        party: subprocess.Popen(
            lab.command(host, argv[party]),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
            cwd=ROOT,
        )
        for party, host in hosts.items()
    }
    out: dict[str, dict[str, Any]] = {}
    for party, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=240)
        assert proc.returncode == 0, f"{party}: {stderr[-2000:]}"
        out[party] = json.loads(stdout.strip().splitlines()[-1])
    after = {party: lab.counters(host) for party, host in hosts.items()}

    # Both results.
    assert out["bank"]["psi"]["intersection_size"] == shared
    assert out["retailer"]["psi"]["intersection_size"] == shared
    assert out["bank"]["crypto"] == {"scheme": "paillier", "key_bits": 1024}
    auc = out["bank"]["metrics"]["test_auc"]
    reference = _reference_auc(tmp_path)
    assert 0.65 < auc and abs(auc - reference) < 0.03, (auc, reference)
    assert out["retailer"]["metrics"] == {}

    # The traffic went over the veth links: each side's eth0 carried at least the payload bytes
    # each party reports having sent (TLS, HTTP/2 and TCP framing come on top).
    sent = {p: int(r["bytes_sent"]) for p, r in out.items()}
    delta = {p: {k: after[p][k] - before[p][k] for k in ("rx_bytes", "tx_bytes")} for p in after}
    assert sent["bank"] > 0 and sent["retailer"] > 0
    assert delta["bank"]["tx_bytes"] >= sent["bank"], (delta, sent)
    assert delta["retailer"]["rx_bytes"] >= sent["bank"], (delta, sent)
    assert delta["retailer"]["tx_bytes"] >= sent["retailer"], (delta, sent)
    assert delta["bank"]["rx_bytes"] >= sent["retailer"], (delta, sent)

    # The bank's node again (`vfl serve`), for the checks from other hosts.
    serve = subprocess.Popen(
        lab.command(bank, [sys.executable, "-m", "vfl.cli", "serve", "--config", str(federation),
                           "--party", "bank", "--json"]),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=ROOT,
    )  # fmt: skip
    try:
        line = _first_line(serve, timeout=60)
        assert line, "vfl serve printed nothing"
        assert json.loads(line)["status"] == "serving"
        target = f"{addr['bank']}:{PORT}"
        retailer_id = ["--ca", str(fed_dir / "ca.pem"), "--cert", str(fed_dir / "retailer" /
                       "tls.pem"), "--key", str(fed_dir / "retailer" / "tls.key")]  # fmt: skip

        # A standard TLS client on the retailer's host checks the bank's IP SAN: TLS 1.3.
        tls = _probe(lab, retailer, "tls", *retailer_id, addr["bank"], str(PORT))
        assert tls["ok"] and tls["version"] == "TLSv1.3", tls

        # An intruder in a third namespace on the same bridge but another subnet: no route.
        eve = lab.add_host(address="10.231.1.3/24")
        assert ipaddress.ip_address(addr["bank"]) not in ipaddress.ip_network("10.231.1.0/24")
        tcp = _probe(lab, eve, "tcp", addr["bank"], str(PORT))
        assert tcp == {"connected": False, "error": "ENETUNREACH"}, tcp

        # Given an address on the segment it reaches the node, and mutual TLS refuses its
        # certificate of another CA (it trusts the federation CA, so the refusal is the bank's).
        lab.add_address(eve, "10.231.0.99/24")
        foreign = init_federation(["eve", "mallory"], tmp_path / "foreign").parent
        eve_id = ["--ca", str(fed_dir / "ca.pem"), "--cert", str(foreign / "eve" / "tls.pem"),
                  "--key", str(foreign / "eve" / "tls.key")]  # fmt: skip
        refused = _probe(lab, eve, "health", *eve_id, "--server-name", "bank", target)
        assert refused.get("error") == "UNAVAILABLE", refused
        # The same host with the federation's retailer certificate is served: the certificate,
        # not the network position, is what the bank refused.
        served = _probe(lab, eve, "health", *retailer_id, "--server-name", "bank", target)
        assert served == {"status": "SERVING"}, served
    finally:
        serve.terminate()
        try:
            serve.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            serve.kill()
            serve.communicate()
