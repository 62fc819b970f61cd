import pytest
import torch

from explorer import data, models


@pytest.fixture(autouse=True)
def models_you_add(tmp_path_factory, monkeypatch):
    """Models a test adds go to a folder of its own, never into the user's data folder."""
    folder = tmp_path_factory.mktemp("added-models")
    monkeypatch.setenv("EXPLORER_MODELS", str(folder))
    return folder


@pytest.fixture(scope="session")
def mnist_test():
    """The full real test set, fetched (and checksum-verified) on first use."""
    return data.load_split("test")


@pytest.fixture(scope="session")
def digits():
    """128 real test digits from the bundled sample, as the attacks take them."""
    images, labels, _ = data.load_sample()
    return data.to_tensor(images[:128]), torch.from_numpy(labels[:128])


@pytest.fixture(scope="session")
def softmax_model():
    return models.load("softmax")


@pytest.fixture
def with_fashion_model(tmp_path, monkeypatch):
    """A checkpoint folder holding softmax and `fashion-new`: softmax's weights under a Fashion-MNIST card, a model
    of that dataset by its data digest and one any attack breaks at once, so a whole evaluation takes seconds."""
    import shutil

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for suffix in (".safetensors", ".json"):
        shutil.copy(models.checkpoint_dir() / f"softmax{suffix}", folder)
    monkeypatch.setenv("EXPLORER_CHECKPOINTS", str(folder))
    card = {key: None for key in models.CARD_KEYS if key != "weights_sha256"}
    models.save(models.load("softmax"), folder / "fashion-new",
                {**card, "name": "fashion-new", "clean_accuracy": 0.1,
                 "data_sha256": data.FASHION_MNIST.content_sha256})
    return folder
