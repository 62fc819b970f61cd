"""A model made outside the project, exported to ONNX, becomes a checkpoint like the shipped ones."""

import sys
from pathlib import Path

import pytest
import torch
from extras import ROOT
from made_elsewhere import (
    Theirs,
    doubling_graph,
    export,
    exported_with_defaults,
    install_exporter,
    install_onnx_extra,
)
from torch import nn

from explorer import attacks, data, latent, models


@pytest.fixture(scope="module", autouse=True)
def onnx_extra():
    install_onnx_extra()


@pytest.fixture
def checkpoints(tmp_path, monkeypatch, models_you_add):
    """No shipped checkpoints; the folder the models a test adds go to."""
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    monkeypatch.setenv("EXPLORER_CHECKPOINTS", str(shipped))
    return models_you_add


def test_an_onnx_classifier_goes_through_the_cli_and_runs_like_the_original(tmp_path, checkpoints, mnist_test,
                                                                            capsys):
    from explorer import cli

    torch.manual_seed(0)
    theirs = Theirs()
    with torch.no_grad():  # running statistics that differ from (0, 1), so a wrong batch norm would show
        theirs.embedding[1].running_mean.uniform_(-0.5, 0.5)
        theirs.embedding[1].running_var.uniform_(0.5, 2.0)
    offered = export(theirs, tmp_path / "theirs.onnx")
    assert cli.main(["models", "add", str(offered), "--name", "theirs"]) == 0
    assert "theirs: added" in capsys.readouterr().out
    loaded = models.load("theirs")
    assert "ONNX graph" in loaded.card["architecture"] and loaded.embedding_dim == 32
    ops = {node["op"] for node in loaded.card["graph"]["nodes"]}
    assert {"BatchNormalization", "Shape", "Gather", "Reshape", "AveragePool", "LeakyRelu"} <= ops

    images = data.to_tensor(mnist_test[0][:64])
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), theirs(images), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(loaded.embed(images), theirs.features(images), atol=1e-5, rtol=1e-4)
    assert latent.embed(loaded, mnist_test[0][:8]).shape == (8, 32)

    labels = torch.from_numpy(mnist_test[1][:16])
    gradients = []
    for model in (loaded, theirs):  # the attacks' gradients reach the pixels as they do through the original
        pixels = images[:16].clone().requires_grad_(True)
        nn.functional.cross_entropy(model(pixels), labels).backward()
        gradients.append(pixels.grad)
    assert gradients[0].abs().sum() > 0
    torch.testing.assert_close(gradients[0], gradients[1], atol=1e-6, rtol=1e-3)
    for kind, steps in (("pgd", None), ("apgd-ce", 10), ("latent", 10), ("square", 20)):  # its own embedding too
        adversarial = attacks.attack(loaded, images[:16], labels, kind, 0.3, **({"steps": steps} if steps else {}))
        assert float((adversarial - images[:16]).abs().max()) <= 0.3 + 1e-6, kind


def test_the_shipped_softmax_exported_and_added_back_is_the_same_model(tmp_path, checkpoints, mnist_test):
    from explorer.models import own

    shipped = models.load(ROOT / "checkpoints" / "softmax.safetensors")
    added = models.load(own.add(export(shipped, tmp_path / "softmax.onnx"), "again"))
    assert added.card["graph"]["embedding"] == "/dense/dense.2/Gemm_output_0"  # guessed: the logits' dense input
    assert added.card["clean_accuracy"] == pytest.approx(shipped.card["clean_accuracy"], abs=1e-4)
    images = data.to_tensor(mnist_test[0][:256])
    with torch.no_grad():
        torch.testing.assert_close(added.embed(images), shipped.embed(images), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(added(images), shipped(images), atol=1e-4, rtol=1e-4)


class Skip(Theirs):
    """Its logits also read the convolutions directly, past the embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.shortcut = nn.Linear(8 * 7 * 7, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.features(x)) + self.shortcut(self.conv(x).flatten(1))


class Flat(Theirs):
    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding(self.conv(x).flatten(1))


class Sine(Theirs):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(super().forward(x))


def offer(kind: str, path: Path) -> Path:
    if kind == "garbage":
        path.write_bytes(b"these bytes are not a protobuf")
        return path
    if kind == "colour":
        return export(nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10)), path, (1, 3, 32, 32))
    model = {"skip": Skip(), "sine": Sine(), "five": Theirs(classes=5), "flat": Flat()}.get(kind, Theirs())
    return export(model, path)


@pytest.mark.parametrize(("kind", "embedding", "message"), [
    ("garbage", None, "not a valid ONNX model"),
    ("sine", None, "operators the explorer cannot run: Sin"),
    ("colour", None, r"input has shape \(N, 3, 32, 32\)"),
    ("five", None, r"it must give \(N, 10\)"),
    ("skip", "/embedding/embedding.2/Sigmoid_output_0", "besides the embedding"),
    ("fine", "no-such-layer", "no layer output named 'no-such-layer'"),
    ("flat", "/conv/conv.4/Tanh_output_0", r"must be \(N, D\)"),
])
def test_an_onnx_file_that_cannot_serve_gets_a_one_line_reason_and_changes_nothing(tmp_path, checkpoints, kind,
                                                                                   embedding, message):
    from explorer.models import own

    offered = offer(kind, tmp_path / f"{kind}.onnx")
    with pytest.raises(models.CheckpointError, match=message) as error:
        own.add(offered, "theirs", embedding)
    assert "\n" not in str(error.value)
    assert list(checkpoints.iterdir()) == []


def test_without_the_onnx_package_the_message_says_how_to_get_it(tmp_path, checkpoints, monkeypatch):
    from explorer.models import own

    offered = export(Theirs(), tmp_path / "theirs.onnx")
    monkeypatch.setitem(sys.modules, "onnx", None)  # what `import onnx` meets where the extra is not installed
    with pytest.raises(models.CheckpointError, match=r"pip install 'explorer\[onnx\]'"):
        own.add(offered, "theirs")


def test_a_card_whose_graph_does_not_match_its_weights_is_refused(tmp_path, checkpoints):
    from explorer.models import own

    added = own.add(export(Theirs(), tmp_path / "theirs.onnx"), "theirs")
    other = checkpoints / "other.safetensors"
    models.save(models.ConvNet(), other, {k: v for k, v in models.read_card(added).items() if k != "weights_sha256"})
    with pytest.raises(models.CheckpointError, match="tensors where its card's graph needs"):
        models.load("other")


class Relu6Net(nn.Module):
    """ReLU6 exports as Clip, and its 'same' padding as a Pad node in front of an unpadded convolution."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.ZeroPad2d((1, 2, 0, 1)), nn.Conv2d(1, 6, 3), nn.ReLU6(), nn.MaxPool2d(2),
                                  nn.ReflectionPad2d(1), nn.Conv2d(6, 6, 3, stride=2), nn.ReLU6(), nn.Flatten())
        self.embedding = nn.Linear(6 * 7 * 7, 16)
        self.logits = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(torch.relu(self.embedding(self.body(x))))


@pytest.mark.parametrize("kind", ["convnet", "batchnorm", "relu6-and-padding"])
def test_a_model_exported_with_torchs_defaults_is_added_from_its_two_files_and_attacked(
        tmp_path, checkpoints, mnist_test, kind, capsys):
    from explorer import cli

    install_exporter()
    torch.manual_seed(0)
    made = {"convnet": models.load(ROOT / "checkpoints" / "softmax.safetensors"), "batchnorm": Theirs(),
            "relu6-and-padding": Relu6Net()}[kind]
    offered = exported_with_defaults(made, tmp_path / "exported" / "model.onnx")
    assert sorted(p.name for p in offered.parent.iterdir()) == ["model.onnx", "model.onnx.data"]
    assert cli.main(["models", "add", str(offered), "--name", "mine"]) == 0
    loaded = models.load("mine")
    assert loaded.spec["batch"] == 1  # exported for one image: run image by image, batched by vmap
    images, labels = data.to_tensor(mnist_test[0][:32]), torch.from_numpy(mnist_test[1][:32])
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), made(images), atol=1e-4, rtol=1e-4)
    adversarial = attacks.attack(loaded, images, labels, "pgd", 0.3)
    assert float((adversarial - images).abs().max()) <= 0.3 + 1e-6
    gradients = []
    for model in (loaded, made):  # the attacks' gradients reach the pixels as they do through the original
        pixels = images[:8].clone().requires_grad_(True)
        nn.functional.cross_entropy(model(pixels), labels[:8]).backward()
        gradients.append(pixels.grad)
    assert gradients[0].abs().sum() > 0
    torch.testing.assert_close(gradients[0], gradients[1], atol=1e-6, rtol=1e-3)
    if kind == "convnet":  # a trained model: the attack fools it
        with torch.no_grad():
            assert (loaded(adversarial).argmax(1) != labels).sum() > (loaded(images).argmax(1) != labels).sum()
    ops = {node["op"] for node in loaded.card["graph"]["nodes"]}
    if kind == "relu6-and-padding":
        assert {"Clip", "Pad"} <= ops


def test_an_exported_models_data_file_must_sit_beside_it(tmp_path, checkpoints):
    import onnx

    from explorer.models import own

    install_exporter()
    offered = exported_with_defaults(Theirs(), tmp_path / "theirs.onnx")
    data_file = offered.with_name("theirs.onnx.data")
    moved = tmp_path / "elsewhere.data"
    data_file.rename(moved)
    with pytest.raises(models.CheckpointError, match=r"'theirs\.onnx\.data' beside it, which is missing: add both"):
        own.add(offered, "theirs")
    proto = onnx.load(str(offered), load_external_data=False)
    for tensor in proto.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../elsewhere.data"
    sneaky = tmp_path / "inner" / "sneaky.onnx"
    sneaky.parent.mkdir()
    onnx.save_model(proto, str(sneaky))
    with pytest.raises(models.CheckpointError, match="outside the model's folder"):
        own.add(sneaky, "theirs")
    moved.rename(data_file)
    assert list(checkpoints.iterdir()) == []
    added = own.add_upload(offered.read_bytes(), "theirs.onnx", "theirs",
                           beside={"theirs.onnx.data": data_file.read_bytes()})  # the sidebar's pair of files
    assert models.load(added).spec["batch"] == 1
    with pytest.raises(models.CheckpointError, match="give it its plain name"):
        own.add_upload(offered.read_bytes(), "theirs.onnx", "again", beside={"../theirs.onnx.data": b""})


def test_a_graph_that_multiplies_its_input_is_refused_in_seconds_within_bounded_memory(tmp_path, checkpoints):
    import subprocess

    from explorer.models import own

    hostile = doubling_graph(tmp_path / "doubling.onnx")
    assert hostile.stat().st_size < 64_000
    # A process of its own runs the CLI, so that its children's peak memory is the CLI's alone.
    measure = ("import resource, subprocess, sys, time; began = time.monotonic(); "
               "child = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=120); "
               "print(child.returncode, time.monotonic() - began, "
               "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024); print(child.stderr, end='')")
    measured = subprocess.run([sys.executable, "-c", measure, sys.executable, "-m", "explorer.cli", "models", "add",
                               str(hostile), "--name", "hostile"], capture_output=True, text=True, timeout=180)
    first, *stderr = measured.stdout.splitlines()
    code, seconds, peak_mb = int(first.split()[0]), *map(float, first.split()[1:])
    assert code == 2 and len(stderr) == 1 and "cannot exhaust the memory" in stderr[0], measured.stdout
    assert seconds < 60 and peak_mb < 1_500, (seconds, peak_mb)  # torch's import alone is most of it
    with pytest.raises(models.CheckpointError, match="past 2,097,152 numbers per image"):  # what the sidebar calls
        own.add_upload(hostile.read_bytes(), "doubling.onnx", "hostile")
    assert list(checkpoints.iterdir()) == []
