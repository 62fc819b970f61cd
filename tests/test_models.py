import json
import shutil

import pytest
import torch
from safetensors.torch import save_file

from explorer import data, models
from explorer.provenance import sha256_file


def copy_checkpoint(tmp_path, name="softmax"):
    for suffix in (".safetensors", ".json"):
        shutil.copy(models.checkpoint_dir() / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    return tmp_path / f"{name}.safetensors"


def rewrite_card(weights, **changes):
    card_path = weights.with_suffix(".json")
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card.update(changes)
    card_path.write_text(json.dumps(card), encoding="utf-8")


def test_the_convnet_has_the_papers_shape():
    model = models.ConvNet()
    assert sum(p.numel() for p in model.parameters()) == 714_026
    x = torch.rand(3, 1, 28, 28)
    z = model.embed(x)
    assert z.shape == (3, models.EMBEDDING_DIM)
    torch.testing.assert_close(model.head(z), model(x))


@pytest.mark.parametrize("name", ["softmax", "triplet", "triplet-fgsm", "triplet-pgd", "softmax-pgd"])
def test_shipped_checkpoints_load_by_name_and_match_their_cards(name):
    model = models.load(name)
    assert not model.training
    card = model.card
    assert card["name"] == name and card["data_sha256"] == data.MNIST.content_sha256
    if name in ("softmax", "triplet"):
        assert card["clean_accuracy"] >= 0.992  # the paper's Softmax figure, the bar for both
    images, labels, _ = data.load_sample()
    with torch.no_grad():
        predictions = model(data.to_tensor(images)).argmax(1).numpy()
    assert (predictions == labels).mean() == pytest.approx(card["clean_accuracy"], abs=0.01)


def test_load_accepts_a_path_to_the_weights_or_the_card(tmp_path):
    weights = copy_checkpoint(tmp_path)
    assert models.load(weights).card["name"] == "softmax"
    assert models.load(weights.with_suffix(".json")).card["name"] == "softmax"


def test_an_unknown_name_lists_the_shipped_ones():
    with pytest.raises(models.CheckpointError, match=r"no such checkpoint \(shipped: .*\btriplet-pgd\b") as error:
        models.load("no-such-model")
    assert all(name in str(error.value) for name in models.available())


def test_weights_that_do_not_match_their_card_are_refused(tmp_path):
    weights = copy_checkpoint(tmp_path)
    with open(weights, "r+b") as f:
        f.seek(-4, 2)
        f.write(b"\x00\x00\x00\x00")
    with pytest.raises(models.CheckpointError, match="does not match the card"):
        models.load(weights)


def test_a_corrupt_safetensors_file_is_named(tmp_path):
    weights = copy_checkpoint(tmp_path)
    weights.write_bytes(weights.read_bytes()[:1000])
    rewrite_card(weights, weights_sha256=sha256_file(weights))
    with pytest.raises(models.CheckpointError, match=f"{weights}: not a readable safetensors file"):
        models.load(weights)


def test_tensors_of_the_wrong_shape_are_refused(tmp_path):
    weights = copy_checkpoint(tmp_path)
    state = models.ConvNet().state_dict()
    state["classifier.weight"] = torch.zeros(7, models.EMBEDDING_DIM)
    save_file({k: v.contiguous() for k, v in state.items()}, weights)
    rewrite_card(weights, weights_sha256=sha256_file(weights))
    with pytest.raises(models.CheckpointError, match="do not fit the ConvNet"):
        models.load(weights)


def test_a_pickle_offered_as_a_checkpoint_is_refused_unopened(tmp_path, monkeypatch):
    weights = copy_checkpoint(tmp_path)
    torch.save(models.ConvNet().state_dict(), weights)
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("a pickle was unpickled"))
    with pytest.raises(models.CheckpointError, match="pickle"):
        models.load(weights)


@pytest.mark.parametrize(("content", "message"), [(None, "card is missing"), ("{oops", "not valid JSON"),
                                                   ('{"name": "x"}', "card lacks")])
def test_a_missing_or_malformed_card_is_named(tmp_path, content, message):
    weights = copy_checkpoint(tmp_path)
    card = weights.with_suffix(".json")
    if content is None:
        card.unlink()
    else:
        card.write_text(content, encoding="utf-8")
    with pytest.raises(models.CheckpointError, match=message):
        models.load(weights)


def test_save_then_load_round_trips(tmp_path):
    model = models.ConvNet()
    card = {key: "x" for key in models.CARD_KEYS if key != "weights_sha256"}
    path = models.save(model, tmp_path / "mine", card)
    loaded = models.load(path)
    x = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(loaded(x), model(x))
    assert loaded.card["weights_sha256"] == sha256_file(path)


def test_your_own_convnet_becomes_a_checkpoint_like_the_shipped_ones(tmp_path, monkeypatch, mnist_test, capsys):
    from explorer import cli

    monkeypatch.setenv("EXPLORER_CHECKPOINTS", str(tmp_path / "checkpoints"))
    mine = tmp_path / "made-elsewhere.safetensors"
    torch.manual_seed(0)
    made = models.ConvNet()
    save_file({k: v.contiguous() for k, v in made.state_dict().items()}, mine)
    assert cli.main(["models", "add", str(mine), "--name", "mine"]) == 0
    assert "mine: added" in capsys.readouterr().out
    assert models.available() == ["mine"]
    loaded = models.load("mine")
    images = data.to_tensor(mnist_test[0][:64])
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), made.eval()(images))
    card = loaded.card
    assert card["source"] == {"file": str(mine), "sha256": sha256_file(mine)}
    assert 0.0 <= card["clean_accuracy"] <= 0.3  # an untrained network: about chance, measured, not assumed


@pytest.mark.parametrize(("offer", "name", "message"), [
    ("pickle", "theirs", "this is a pickle"),
    ("wrong-shape", "theirs", "do not fit the ConvNet"),
    ("good", "Bad Name!", "cannot name a checkpoint"),
    ("good", "taken", "is taken"),
    ("missing", "theirs", "no such file"),
])
def test_a_model_that_cannot_be_added_says_why_and_changes_nothing(tmp_path, models_you_add, offer, name, message):
    from explorer import cli

    folder = models_you_add
    (folder / "taken.safetensors").write_bytes(b"")
    offered = tmp_path / "offered.safetensors"
    if offer == "pickle":
        torch.save(models.ConvNet().state_dict(), offered)
    elif offer == "wrong-shape":
        save_file({"features.0.0.weight": torch.zeros(3, 3)}, offered)
    elif offer == "good":
        save_file({k: v.contiguous() for k, v in models.ConvNet().state_dict().items()}, offered)
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(models.CheckpointError, match=message):
        from explorer.models import own

        own.add(offered, name)
    assert sorted(p.name for p in folder.iterdir()) == before
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["models", "add", str(offered), "--name", name])
    assert exit_info.value.code == 2
