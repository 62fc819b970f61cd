import json

import pytest
import torch

from explorer import models, train


def tiny_run(tmp_path, name, **kwargs):
    return train.train("softmax", runs=tmp_path / name, out=tmp_path / f"{name}.safetensors", epochs=2,
                       train_limit=256, progress=False, **kwargs)


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path):
    def interrupt(epoch):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tiny_run(tmp_path, "interrupted", after_epoch=interrupt)
    assert json.loads((tmp_path / "interrupted" / "softmax" / "state.json").read_text())["epochs_done"] == 1
    with pytest.raises(train.TrainingError, match="--resume"):
        tiny_run(tmp_path, "interrupted")  # a second start never silently overwrites the saved run
    resumed = models.load(tiny_run(tmp_path, "interrupted", resume=True))
    straight = models.load(tiny_run(tmp_path, "straight"))
    for key, value in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, atol=1e-6, rtol=0)
    card = resumed.card
    assert [record["epoch"] for record in card["history"]] == [1, 2]
    assert card["params"]["train_digits"] == 256 and card["recipe"] == "softmax"


def test_unknown_recipe_is_refused():
    with pytest.raises(train.TrainingError, match="unknown recipe"):
        train.train("dropout")
