"""The split NN benchmark's Vehicle part: stratified folds shared by both models, its flags."""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import pytest

from tests._data import FATE, read_fate
from vfl.bench import splitnn


def vehicle_labels() -> np.ndarray:
    labels: np.ndarray = read_fate("vehicle_scale_hetero_guest.csv")["y"].to_numpy()
    return labels


def test_folds_partition_the_rows_and_keep_class_shares() -> None:
    y = vehicle_labels()
    masks = [splitnn._fold_mask(y, fold=f, folds=5) for f in range(5)]
    assert np.array_equal(np.sum(masks, axis=0), np.ones(len(y)))
    for mask in masks:
        for cls in np.unique(y):
            expected = np.sum(y == cls) / 5
            assert abs(np.sum(y[mask] == cls) - expected) <= 1
    again = splitnn._fold_mask(y, fold=3, folds=5)
    assert np.array_equal(again, masks[3])


def test_fold_data_matches_the_mask_for_both_parties() -> None:
    y = vehicle_labels()
    g_tr, h_tr, g_te, h_te = splitnn._data(str(FATE), "vehicle", fold=1, folds=5)
    mask = splitnn._fold_mask(y, fold=1, folds=5)
    assert len(g_te) == len(h_te) == int(mask.sum())
    assert len(g_tr) == len(h_tr) == int((~mask).sum())
    assert list(g_te.index) == list(h_te.index) == list(np.flatnonzero(mask))


def test_mean_se() -> None:
    out = splitnn._mean_se([1.0, 2.0, 3.0, 4.0])
    assert out["mean"] == pytest.approx(2.5)
    assert out["standard_error"] == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2)


def test_vehicle_flags_run_every_fold_and_defence(monkeypatch: pytest.MonkeyPatch) -> None:
    short = dataclasses.replace(splitnn.DATASETS["vehicle"], epochs=1, batch_size=128)
    monkeypatch.setitem(splitnn.DATASETS, "vehicle", short)
    parser = argparse.ArgumentParser()
    splitnn.add_arguments(parser)
    args = parser.parse_args(
        [
            "--no-credit",
            "--data-dir",
            str(FATE),
            "--transport",
            "memory",
            "--vehicle-scheme",
            "plain",
            "--vehicle-folds",
            "2",
            "--vehicle-defence",
            "0",
            "0.5",
            "--seeds",
            "0",
        ]
    )
    out = splitnn.run(args)
    assert "runs" not in out  # the credit part was skipped
    vehicle = out["vehicle"]
    assert vehicle["scheme"] == "plain" and vehicle["transport"] == "memory"
    assert [s["defence"] for s in vehicle["settings"]] == ["off", "on"]
    for setting in vehicle["settings"]:
        folds = setting["folds"]
        assert [f["fold"] for f in folds] == [0, 1]
        assert sum(f["test_rows"] for f in folds) == len(vehicle_labels())
        gaps = [100 * (f["split_test_accuracy"] - f["centralised_test_accuracy"]) for f in folds]
        assert setting["mean_difference_points"] == pytest.approx(np.mean(gaps))
        assert np.isfinite(setting["difference_standard_error_points"])
    # the centralised reference does not depend on the defence setting
    refs = [[f["centralised_test_accuracy"] for f in s["folds"]] for s in vehicle["settings"]]
    assert refs[0] == refs[1]
