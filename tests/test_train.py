import json
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from explorer import attacks, models, runtime, training


def tiny_run(tmp_path, name, **kwargs):
    return training.train("softmax", runs=tmp_path / name, out=tmp_path / f"{name}.safetensors", epochs=2,
                       train_limit=256, progress=False, **kwargs)


KILLED_RUN = """
import sys
from pathlib import Path
from explorer import training
training.train("softmax", runs=Path(sys.argv[1]), out=Path(sys.argv[2]), epochs=2, train_limit=256, progress=False,
            save_every_s=float(sys.argv[3]))
"""


def start_run(tmp_path, save_every_s: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(tmp_path / "killed"),
                             str(tmp_path / "killed.safetensors"), str(save_every_s)],
                            stdout=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> models.ConvNet:
    """The uninterrupted run both kill tests must land on (a tiny run still scores 10,000 test digits an epoch)."""
    return models.load(tiny_run(tmp_path_factory.mktemp("straight"), "straight"))


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for key, value in b.state_dict().items():
        torch.testing.assert_close(a.state_dict()[key], value, atol=1e-6, rtol=0)


def test_a_run_killed_mid_epoch_resumes_from_its_last_epoch_to_the_same_weights(tmp_path, straight):
    state = tmp_path / "killed" / "softmax" / "state.json"
    run = start_run(tmp_path, save_every_s=300)
    # Printed once epoch 1 is saved (a first fetch of MNIST may print before it)
    assert any(line.startswith("softmax epoch 1:") for line in iter(run.stdout.readline, ""))
    time.sleep(0.2)  # into epoch 2: its batches, then its evaluation on 10,000 test digits
    run.kill()  # SIGKILL: nothing gets to save
    run.wait(timeout=30)
    assert json.loads(state.read_text(encoding="utf-8"))["epochs_done"] == 1
    assert not (tmp_path / "killed.safetensors").exists()
    with pytest.raises(training.TrainingError, match="--resume"):
        tiny_run(tmp_path, "killed")  # a second start never silently overwrites the saved run
    resumed = models.load(tiny_run(tmp_path, "killed", resume=True))
    assert_same_weights(resumed, straight)
    card = resumed.card
    assert [record["epoch"] for record in card["history"]] == [1, 2]
    assert card["trained_on"] == card["history"][1]["device"] == runtime.device_name(torch.device("cpu"))
    assert card["params"]["train_digits"] == 256 and card["recipe"] == "softmax"


def test_a_run_killed_within_an_epoch_resumes_from_its_last_batch_to_the_same_weights(tmp_path, straight):
    state = tmp_path / "killed" / "softmax" / "state.json"
    run = start_run(tmp_path, save_every_s=0)  # a save after every batch
    deadline = time.monotonic() + 120
    while not (state.is_file() and "batches_done" in state.read_text(encoding="utf-8")):
        assert run.poll() is None and time.monotonic() < deadline, "no state was saved within epoch 1"
        time.sleep(0.01)
    run.kill()  # after batch 1 of 2; epoch 1 then scores 10,000 test digits, seconds before it could save again
    run.wait(timeout=30)
    saved = json.loads(state.read_text(encoding="utf-8"))
    assert (saved["epochs_done"], saved["batches_done"]) == (0, 1)
    resumed = models.load(tiny_run(tmp_path, "killed", resume=True))
    assert_same_weights(resumed, straight)
    for record, uninterrupted in zip(resumed.card["history"], straight.card["history"], strict=True):
        assert record["train_accuracy"] == uninterrupted["train_accuracy"]  # batch 1's counts were carried over
        assert record["train_loss"] == pytest.approx(uninterrupted["train_loss"], rel=1e-5)


def test_unknown_recipe_is_refused():
    with pytest.raises(training.TrainingError, match="unknown recipe"):
        training.train("dropout")


def test_the_control_is_triplet_pgd_without_the_triplet_loss():
    control, treated = training.RECIPES["softmax-pgd"], training.RECIPES["triplet-pgd"]
    differ = {f.name for f in fields(training.Recipe) if getattr(control, f.name) != getattr(treated, f.name)}
    # the miner only chooses triplets, and the reasons are prose: the training itself differs in the objective alone
    assert differ == {"name", "summary", "objective", "miner", "epochs_reason", "purpose"}
    assert (control.objective, treated.objective) == ("softmax", "triplet")


def test_the_control_trains_the_whole_network_by_cross_entropy_on_each_digit_and_its_pgd_twin():
    torch.manual_seed(0)
    model = models.ConvNet()
    images, labels = torch.rand(8, 1, 28, 28), torch.arange(8)
    loss, logits = training.batch_loss(model, training.RECIPES["softmax-pgd"], images, labels, seed=3, eps=0.3)
    assert logits.shape == (16, 10)  # every digit joined by its twin
    twins = attacks.attack(model, images, labels, "pgd", 0.3, seed=3)
    torch.testing.assert_close(logits, model(torch.cat([images, twins])))
    torch.testing.assert_close(loss, F.cross_entropy(logits, torch.cat([labels, labels])))
    loss.backward()
    assert all(parameter.grad is not None and parameter.grad.abs().sum() > 0 for parameter in model.parameters())


def test_a_recipe_trains_on_fashion_mnist_under_its_own_name_and_fine_tunes_its_own_base(tmp_path, monkeypatch):
    import shutil

    from explorer import data

    folder = tmp_path / "checkpoints"
    monkeypatch.setenv("EXPLORER_CHECKPOINTS", str(folder))
    base = training.train("softmax", dataset="fashion-mnist", runs=tmp_path / "runs", epochs=1, train_limit=256,
                       progress=False)
    assert base == folder / "fashion-softmax.safetensors" and (tmp_path / "runs" / "fashion-softmax").is_dir()
    card = models.load("fashion-softmax").card
    assert (card["name"], card["recipe"], card["dataset"]) == ("fashion-softmax", "softmax", "fashion-mnist")
    assert card["data_sha256"] == data.FASHION_MNIST.content_sha256
    assert models.dataset_of(card) == "fashion-mnist"
    images, labels = data.load_split("test", "fashion-mnist")
    assert card["clean_accuracy"] == training.accuracy(models.load("fashion-softmax"), data.to_tensor(images),
                                                    torch.from_numpy(labels))  # measured on Fashion-MNIST
    tuned = models.load(training.train("triplet", dataset="fashion-mnist", runs=tmp_path / "runs", epochs=1,
                                    train_limit=256, progress=False))
    assert tuned.card["name"] == "fashion-triplet"
    assert tuned.card["base"] == {"name": "fashion-softmax", "weights_sha256": card["weights_sha256"]}

    for suffix in (".safetensors", ".json"):  # an MNIST model under the Fashion name is not a base for Fashion
        shipped = Path(__file__).resolve().parents[1] / "checkpoints" / f"softmax{suffix}"
        shutil.copy(shipped, folder / f"fashion-softmax{suffix}")
    with pytest.raises(training.TrainingError, match="was trained on mnist, not fashion-mnist"):
        training.train("triplet", dataset="fashion-mnist", runs=tmp_path / "other", epochs=1, train_limit=256,
                    progress=False)
