"""Bring your own model: weights made outside the project become a checkpoint like the shipped ones, listed by the
app and the CLI, attacked and evaluated the same way. Today: the explorer's ConvNet architecture in safetensors
(ONNX follows, issue 22). Nothing in the file is ever run: pickles are refused unopened."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from explorer import data, evaluate, models
from explorer.provenance import code_version, now, sha256_file

NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")


def add(source: Path, name: str) -> Path:
    """Check `source`, measure its clean accuracy on the 10,000 test digits, and save it with a card that records
    where it came from; the new checkpoint's path. CheckpointError says what is wrong and changes nothing."""
    if not NAME.fullmatch(name):
        raise models.CheckpointError(f"{name!r} cannot name a checkpoint: use 1 to 40 lower-case letters, digits, "
                                     "- or _, starting with a letter or digit")
    target = models.checkpoint_dir() / f"{name}.safetensors"
    if target.exists() or target.with_suffix(".json").exists():
        raise models.CheckpointError(f"{name!r} is taken in {models.checkpoint_dir()}: pick another name")
    if not source.is_file():
        raise models.CheckpointError(f"{source}: no such file")
    models.refuse_pickle(source)
    model = models.convnet_from(source).eval()
    images, labels = data.load_mnist("test")
    with torch.no_grad():
        wrong = evaluate.misclassified(model, data.to_tensor(images), torch.from_numpy(labels))
    card = {"name": name, "recipe": None, "summary": f"your own model, added from {source.name}", "params": {},
            "seed": None, "data_sha256": data.DATASETS["mnist"].content_sha256,
            "clean_accuracy": 1 - float(wrong.float().mean()), "code_version": code_version(), "date": now(),
            "source": {"file": str(source), "sha256": sha256_file(source)}}
    return models.save(model, target, card)
