"""Checkpoints: round trip, read without pickle, refused when foreign, corrupt or mismatched."""
import json
import pickle

import pytest
import torch

from eo_sr.errors import InvalidInputError, NotFoundError
from eo_sr.learn import build_model, load_checkpoint, save_checkpoint


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_model("residual", factor=4, bands=4, depth=2, width=8)


def test_round_trip_gives_the_same_model_and_metadata(tmp_path, model):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    lr = torch.rand(2, 1, 4, 8, 8)
    model(lr).mean().backward()
    opt.step()
    stats = {"lr": {"low": [0.0] * 4, "high": [0.3] * 4}}
    path = save_checkpoint(tmp_path / "run" / "best.pt", model, norm_stats=stats, store_checksum="abc",
                           extra={"epoch": 3, "val_psnr_gain": 0.4}, optimizer=opt)
    assert path.is_file() and not list(path.parent.glob("*.part"))
    raw = torch.load(path, weights_only=True)  # plain data: no pickle needed
    assert raw["format"] == "eo-sr-checkpoint/1"
    ck = load_checkpoint(path)
    assert ck.config == model.config and ck.norm_stats == stats and ck.store_checksum == "abc"
    assert ck.extra == {"epoch": 3, "val_psnr_gain": 0.4} and ck.eo_sr_version
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(ck.model(lr), model(lr))
    resumed = torch.optim.Adam(ck.model.parameters(), lr=1e-3)
    resumed.load_state_dict(ck.optimizer)
    assert resumed.state_dict()["state"][0]["step"] == 1


def test_missing_foreign_corrupt_and_pickled_files_are_refused(tmp_path, model):
    with pytest.raises(NotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nope.pt")
    torch.save({"state_dict": model.state_dict()}, tmp_path / "foreign.pt")
    with pytest.raises(InvalidInputError, match="not an eo-sr checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    (tmp_path / "corrupt.pt").write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(InvalidInputError, match="not a readable"):
        load_checkpoint(tmp_path / "corrupt.pt")

    class Payload:  # what a malicious checkpoint would smuggle in
        def __reduce__(self):
            return (print, ("this would have run",))

    with open(tmp_path / "pickled.pt", "wb") as f:
        pickle.dump({"format": "eo-sr-checkpoint/1", "x": Payload()}, f)
    with pytest.raises(InvalidInputError, match="not a readable"):
        load_checkpoint(tmp_path / "pickled.pt")


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path, model):
    path = save_checkpoint(tmp_path / "a.pt", model)
    raw = torch.load(path, weights_only=True)
    raw["config"] = raw["config"].replace('"width": 8', '"width": 16')
    torch.save(raw, path)
    with pytest.raises(InvalidInputError, match="do not fit"):
        load_checkpoint(path)


def test_data_the_model_was_not_trained_for_is_refused(tmp_path, model):
    ck = load_checkpoint(save_checkpoint(tmp_path / "a.pt", model, store_checksum="abc"))
    ck.check_input(bands=4, frames=1, factor=4, store_checksum="abc")
    for kwargs, message in (({"bands": 3}, "takes 4 band"), ({"frames": 8}, "at most 1 LR frame"),
                            ({"factor": 2}, "upsamples by 4"), ({"store_checksum": "xyz"}, "checksums differ")):
        with pytest.raises(InvalidInputError, match=message):
            ck.check_input(**kwargs)


def test_a_checkpoint_from_before_the_standardize_option_loads_without_it(tmp_path):
    model = build_model("residual", factor=4, bands=4, depth=1, width=8, standardize=False)
    path = save_checkpoint(tmp_path / "old.pt", model)
    payload = torch.load(path, weights_only=True)
    config = json.loads(payload["config"])
    del config["standardize"]
    payload["config"] = json.dumps(config)
    torch.save(payload, path)
    assert load_checkpoint(path).model.standardize is False
    assert build_model("residual", factor=4, bands=4).standardize is True  # the networks' default now
