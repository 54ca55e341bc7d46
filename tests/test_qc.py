"""eo_sr.qc: features, clusters, rules, scoring against the demo world's truth."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from eo_sr import demo, matching, patches, qc
from eo_sr.demo.truth import patch_truth
from eo_sr.errors import InvalidInputError


@pytest.fixture(scope="module")
def qc_store(tiny_world, tmp_path_factory):
    res = matching.match_scenes(tiny_world.items(demo.HR_COLLECTION), tiny_world.items(demo.LR_COLLECTION))
    out = tmp_path_factory.mktemp("qcstore")
    manifest = patches.build_patch_store(res.pairs, {it.id: it for it in tiny_world.items()}, out,
                                         config=patches.PatchConfig(lr_size=16), progress=False)
    return out, manifest


@pytest.mark.parametrize("dy, dx", [(3, -2), (0, 5), (-4, 0), (0, 0)])
def test_batch_shift_recovers_shifts_against_a_blurry_reference(dy, dx):
    rng = np.random.default_rng(0)
    hr = ndimage.gaussian_filter(rng.random((4, 160, 160)), (0, 2, 2))
    blurry = ndimage.gaussian_filter(hr, (0, 3, 3)) + 0.001 * rng.standard_normal(hr.shape)
    moved = np.roll(hr, (dy, dx), axis=(1, 2))[:, 16:144, 16:144]
    got_dy, got_dx, peak = qc.batch_phase_shift(blurry[:, 16:144, 16:144], moved)
    assert np.allclose(got_dy, dy, atol=0.3) and np.allclose(got_dx, dx, atol=0.3)
    assert (peak > 0.3).all()


def test_run_qc_scores_every_patch(qc_store):
    out, manifest = qc_store
    table = qc.run_qc(out, progress=False)
    assert sorted(table["patch_id"]) == sorted(manifest["patch_id"])
    for col in ("ssim", "psnr", "mse", "min_block_ratio", "max_block_ratio", "max_block_error", "shift_anomaly",
                "shadow_neighbour"):
        assert col in table.columns
    assert np.isfinite(table[["ssim", "psnr", "min_block_ratio"]]).all().all()
    assert (table["ssim"] <= 1).all() and (table["psnr"] > 15).all()


def test_flagged_patches_are_the_corrupted_ones(qc_store, tiny_world):
    out, manifest = qc_store
    table = qc.apply_rules(qc.run_qc(out, progress=False))
    truth = patch_truth(tiny_world, manifest)
    result = qc.score(table, truth)
    assert result["patches"] == len(manifest)
    assert result["corrupted"] > 0
    # flagging is far better than chance: corrupted patches are flagged more often than clean ones
    merged = table.merge(truth, on="patch_id")
    flagged_bad = (~merged["keep"][merged["corrupted"]]).mean()
    flagged_good = (~merged["keep"][~merged["corrupted"]]).mean()
    assert flagged_bad > 0.6 and flagged_good < 0.2
    assert set(merged.loc[~merged["keep"], "drop_reason"]) <= {
        "cluster", "dark_block", "bright_block", "deformation", "unscored"}
    keep = qc.keep_ids(table)
    from eo_sr.dataset import PatchDataset

    kept = sum(len(PatchDataset(out, s, keep=keep)) for s in patches.SPLITS
               if (out / f"{s}.zarr").exists())
    assert kept == len(keep)


def test_clusters_are_deterministic_and_named():
    rng = np.random.default_rng(0)
    n = 300
    table = pd.DataFrame({
        "ssim": np.r_[rng.normal(0.95, 0.01, n), rng.normal(0.80, 0.03, 40), rng.normal(0.99, 0.003, 60)],
        "psnr": np.r_[rng.normal(42, 1.5, n), rng.normal(28, 2, 40), rng.normal(50, 1, 60)],
    })
    a, ca = qc.cluster(table, seed=1)
    b, cb = qc.cluster(table, seed=1)
    assert (a["cluster"] == b["cluster"]).all() and ca.bic == cb.bic
    assert min(ca.bic, key=ca.bic.get) >= 3
    suspects = a["cluster_name"] == "suspect"
    assert suspects[n:n + 40].mean() > 0.9 and suspects[:n].mean() < 0.05
    assert (a["cluster_name"][n + 40:] == "high_score").mean() > 0.9


def test_bad_input():
    small = pd.DataFrame({"ssim": [0.9, 0.8, 0.95], "psnr": [40, 30, 45]})
    with pytest.raises(InvalidInputError, match="too few"):
        qc.cluster(small, max_clusters=6)
    with pytest.raises(InvalidInputError, match="not in the QC table"):
        qc.cluster(small.drop(columns="psnr"))
    with pytest.raises(InvalidInputError, match="apply_rules"):
        qc.keep_ids(small)
    lr = np.zeros((2, 4, 16, 16), np.float32)
    with pytest.raises(InvalidInputError, match="factor"):
        qc.patch_features(lr, np.zeros((2, 4, 48, 48), np.float32), np.ones((2, 16, 16), bool),
                          np.ones((2, 48, 48), bool), factor=4)


def test_score_counts():
    table = pd.DataFrame({"patch_id": list("abcd"), "keep": [False, False, True, True]})
    truth = pd.DataFrame({"patch_id": list("abcd"), "corrupted": [True, False, True, False]})
    s = qc.score(table, truth)
    assert (s["true_positives"], s["false_positives"], s["false_negatives"]) == (1, 1, 1)
    assert s["precision"] == 0.5 and s["recall"] == 0.5
