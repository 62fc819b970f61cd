import json
import subprocess
import sys
import time

import pytest
import torch

from explorer import models, train


def tiny_run(tmp_path, name, **kwargs):
    return train.train("softmax", runs=tmp_path / name, out=tmp_path / f"{name}.safetensors", epochs=2,
                       train_limit=256, progress=False, **kwargs)


KILLED_RUN = """
import sys
from pathlib import Path
from explorer import train
train.train("softmax", runs=Path(sys.argv[1]), out=Path(sys.argv[2]), epochs=2, train_limit=256, progress=False)
"""


def test_a_run_killed_mid_epoch_resumes_from_its_last_epoch_to_the_same_weights(tmp_path):
    state = tmp_path / "killed" / "softmax" / "state.json"
    run = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(tmp_path / "killed"),
                            str(tmp_path / "killed.safetensors")], stdout=subprocess.PIPE, text=True)
    # Printed once epoch 1 is saved (a first fetch of MNIST may print before it)
    assert any(line.startswith("softmax epoch 1:") for line in iter(run.stdout.readline, ""))
    time.sleep(0.2)  # into epoch 2: its batches, then its evaluation on 10,000 test digits
    run.kill()  # SIGKILL: nothing gets to save
    run.wait(timeout=30)
    assert json.loads(state.read_text())["epochs_done"] == 1
    assert not (tmp_path / "killed.safetensors").exists()
    with pytest.raises(train.TrainingError, match="--resume"):
        tiny_run(tmp_path, "killed")  # a second start never silently overwrites the saved run
    resumed = models.load(tiny_run(tmp_path, "killed", resume=True))
    straight = models.load(tiny_run(tmp_path, "straight"))
    for key, value in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, atol=1e-6, rtol=0)
    card = resumed.card
    assert [record["epoch"] for record in card["history"]] == [1, 2]
    assert card["trained_on"] == card["history"][1]["device"] == train.device_name(torch.device("cpu"))
    assert card["params"]["train_digits"] == 256 and card["recipe"] == "softmax"


def test_unknown_recipe_is_refused():
    with pytest.raises(train.TrainingError, match="unknown recipe"):
        train.train("dropout")
