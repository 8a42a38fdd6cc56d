"""Registry versions agree under concurrent jobs: reservations serialise per model name, and the
parties re-propose until every one of them could reserve the agreed version."""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import pytest

from protocols.memory import InMemoryNetwork
from protocols.testkit import run_parties
from vfl.errors import VflError
from vfl.governance import ModelMetadata, ModelRegistry, RegistryError
from vfl.jobs._register import agree_version, register_part

PARTIES = ("bank", "retailer")


def _artefact(tmp_path: Path, party: str, job: str) -> Path:
    path = tmp_path / party / f"{job}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'{{"job": "{job}"}}')
    return path


class _NoPause(random.Random):
    """Back-off pauses of zero (the give-up path, without waiting for it)."""

    def uniform(self, a: float, b: float) -> float:
        return a


def _job(
    tmp_path: Path,
    job_id: str,
    registry_for: Any,
    barrier: threading.Barrier | None,
    *,
    pause: bool = True,
) -> dict[str, str]:
    """One job's registration step at both parties over its own in-memory network."""
    net = InMemoryNetwork(list(PARTIES), job_id=job_id, seed=0)

    def party(name: str) -> Any:
        def fn(channel: Any) -> str:
            with registry_for(name) as registry:
                if barrier is not None:
                    barrier.wait(timeout=30)
                peers = [p for p in PARTIES if p != name]
                version, _, _ = agree_version(
                    channel,
                    registry,
                    name="credit",
                    peers=peers,
                    metrics={},
                    job_id=job_id,
                    timeout=30,
                    rng=random.Random(f"{job_id}/{name}") if pause else _NoPause(),
                )
                model = register_part(
                    registry,
                    name="credit",
                    version=version,
                    artefact=_artefact(tmp_path, name, job_id),
                    metadata=ModelMetadata(job_id=job_id),
                    actor=name,
                    reservation=job_id,
                )
                return model.version

        return fn

    return run_parties({p: party(p) for p in PARTIES}, network=net, timeout=120)


def test_reservations_are_exclusive_and_consumed(tmp_path: Path) -> None:
    artefact = _artefact(tmp_path, "bank", "a")
    with (
        ModelRegistry(tmp_path / "r.db", party="bank") as one,
        ModelRegistry(tmp_path / "r.db", party="bank") as two,
    ):  # two connections to one file: two processes of one party
        assert one.next_free("credit") == two.next_free("credit")
        assert one.reserve("credit", "0.1.0", job_id="a")
        assert not two.reserve("credit", "0.1.0", job_id="b")
        assert two.reserve("credit", "0.1.0", job_id="a")  # the same job again: a no-op
        assert str(two.next_free("credit")) == "0.2.0"  # above the reservation
        assert two.reserve("credit", "0.2.0", job_id="b")
        with pytest.raises(RegistryError, match="reserved by job b"):
            one.register("credit", artefact=artefact, metadata=ModelMetadata(), actor="bank",
                         version="0.2.0", reservation="a")  # fmt: skip
        # b registers first; a's lower reserved version is still accepted afterwards.
        two.register("credit", artefact=artefact, metadata=ModelMetadata(), actor="bank",
                     version="0.2.0", reservation="b")  # fmt: skip
        one.register("credit", artefact=artefact, metadata=ModelMetadata(), actor="bank",
                     version="0.1.0", reservation="a")  # fmt: skip
        assert [m.version for m in one.versions("credit")] == ["0.1.0", "0.2.0"]
        assert one.reservation("credit", "0.1.0") is None  # consumed
        assert not one.reserve("credit", "0.1.0", job_id="c")  # registered now
        with pytest.raises(RegistryError, match="not reserved by job c"):
            one.register("credit", artefact=artefact, metadata=ModelMetadata(), actor="bank",
                         version="0.5.0", reservation="c")  # fmt: skip


class _Interleaved(ModelRegistry):
    """A registry where another job reserves the agreed version just before this party tries
    (the interleaving two concurrent jobs produce), the first ``times`` times."""

    def __init__(self, *args: Any, times: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.times = times
        self.attempts: list[str] = []

    def reserve(self, name: str, version: str, *, job_id: str) -> bool:
        self.attempts.append(version)
        if not job_id.startswith("other") and self.times > 0:
            self.times -= 1
            assert super().reserve(name, version, job_id=f"other-{version}")
        return super().reserve(name, version, job_id=job_id)


def test_a_version_taken_at_one_party_is_proposed_again_above_it(tmp_path: Path) -> None:
    registries: dict[str, ModelRegistry] = {}

    def registry_for(name: str) -> ModelRegistry:
        times = 2 if name == "retailer" else 0
        registries[name] = _Interleaved(tmp_path / f"{name}.db", party=name, times=times)
        return registries[name]

    versions = _job(tmp_path, "job-1", registry_for, barrier=None)
    assert versions == {"bank": "0.3.0", "retailer": "0.3.0"}
    assert registries["retailer"].attempts[-1] == "0.3.0"
    for name in PARTIES:  # bank released what it could not keep; the other jobs hold theirs
        with ModelRegistry(tmp_path / f"{name}.db", party=name) as registry:
            for version in ("0.1.0", "0.2.0", "0.3.0"):
                other = name == "retailer" and version != "0.3.0"
                expected = f"other-{version}" if other else None
                assert registry.reservation("credit", version) == expected
            assert [m.version for m in registry.versions("credit")] == ["0.3.0"]


def test_a_job_gives_up_with_one_line_when_it_never_gets_a_version(tmp_path: Path) -> None:
    def registry_for(name: str) -> ModelRegistry:
        return _Interleaved(tmp_path / f"{name}.db", party=name, times=100)

    with pytest.raises(VflError, match="could not agree on a free version of model credit"):
        _job(tmp_path, "job-1", registry_for, barrier=None, pause=False)
    with ModelRegistry(tmp_path / "bank.db", party="bank") as registry:
        assert registry.versions("credit") == []  # nothing half-written


def test_concurrent_jobs_get_distinct_versions_that_match_at_every_party(tmp_path: Path) -> None:
    jobs = [f"job-{i}" for i in range(4)]
    barrier = threading.Barrier(len(jobs) * len(PARTIES))
    results: dict[str, dict[str, str]] = {}
    errors: list[BaseException] = []

    def registry_for(name: str) -> ModelRegistry:
        return ModelRegistry(tmp_path / f"{name}.db", party=name)

    def run(job_id: str) -> None:
        try:
            results[job_id] = _job(tmp_path, job_id, registry_for, barrier)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    assert not errors, errors
    assert all(r["bank"] == r["retailer"] for r in results.values()), results
    assert len({r["bank"] for r in results.values()}) == len(jobs), results
    registered = {}
    for name in PARTIES:
        with ModelRegistry(tmp_path / f"{name}.db", party=name) as registry:
            registered[name] = {m.version: m.metadata.job_id for m in registry.versions("credit")}
    assert registered["bank"] == registered["retailer"]
    assert registered["bank"] == {r["bank"]: job for job, r in results.items()}
