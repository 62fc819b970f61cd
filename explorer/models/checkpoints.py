"""The one place a checkpoint is saved or loaded.

A checkpoint is NAME.safetensors (weights; safetensors cannot run code) beside NAME.json (its model card: how it
was trained, on what data, how accurate it is). Pickles are never loaded. A model added from ONNX is a GraphNet:
its graph is in the card, its constants in the safetensors file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from explorer import data, files
from explorer.models.convnet import ConvNet
from explorer.models.graph_net import GraphError, GraphNet
from explorer.provenance import sha256_file

CARD_KEYS = ("name", "recipe", "params", "seed", "data_sha256", "clean_accuracy", "code_version", "date",
             "weights_sha256")


def checkpoint_dir() -> Path:
    """The shipped checkpoints: $EXPLORER_CHECKPOINTS, else the repository's checkpoints/ folder."""
    if env := os.environ.get("EXPLORER_CHECKPOINTS"):
        return Path(env)
    return Path(__file__).resolve().parents[2] / "checkpoints"


def user_model_dir() -> Path:
    """Where the models a user adds go, never into the installed package: $EXPLORER_MODELS, else
    $XDG_DATA_HOME/explorer/models (~/.local/share/explorer/models when that is unset)."""
    if env := os.environ.get("EXPLORER_MODELS"):
        return Path(env)
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "explorer" / "models"


def model_folders() -> list[Path]:
    """The folders checkpoints are listed from by name: the shipped ones first."""
    return [checkpoint_dir(), user_model_dir()]


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt or does not fit the model; the message names the file."""


def resolve(name_or_path: str | Path) -> Path:
    """A name ('softmax', or a model you added) or a path to NAME.safetensors (or its card NAME.json)."""
    text = str(name_or_path)
    if os.sep not in text and "/" not in text and not text.endswith((".safetensors", ".json")):
        found = (folder / f"{text}.safetensors" for folder in model_folders())
        return next((path for path in found if path.is_file()), checkpoint_dir() / f"{text}.safetensors")
    path = Path(text)
    return path.with_suffix(".safetensors") if path.suffix in (".json", "") else path


def available() -> list[str]:
    """Names of the checkpoints: the shipped ones, then the ones you added."""
    names = [sorted(p.stem for p in folder.glob("*.safetensors") if p.with_suffix(".json").is_file())
             for folder in model_folders()]
    return list(dict.fromkeys(name for folder in names for name in folder))


def catalogue() -> dict[str, str]:
    """Each checkpoint's dataset, by name. One whose card cannot be read counts as MNIST's: picking it says why."""
    datasets = {}
    for name in available():
        try:
            datasets[name] = dataset_of(read_card(resolve(name)))
        except CheckpointError:
            datasets[name] = "mnist"
    return datasets


def dataset_of(card: dict[str, Any]) -> str:
    """The dataset a checkpoint was trained (or measured) on, known by its card's data digest."""
    return next((spec.name for spec in data.DATASETS.values() if spec.content_sha256 == card.get("data_sha256")),
                "mnist")


def looks_like_pickle(head: bytes) -> bool:
    # torch.save writes a zip (PK..) holding a pickle; a bare pickle starts with the PROTO opcode 0x80.
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def read_card(weights: Path) -> dict[str, Any]:
    card_path = weights.with_suffix(".json")
    if not card_path.is_file():
        raise CheckpointError(f"{card_path}: the model card is missing (every checkpoint needs NAME.json)")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{card_path}: the model card is not valid JSON ({exc})") from exc
    if not isinstance(card, dict) or (missing := [k for k in CARD_KEYS if k not in card]):
        raise CheckpointError(f"{card_path}: the model card lacks {missing if isinstance(card, dict) else CARD_KEYS}")
    return card


def refuse_pickle(weights: Path) -> None:
    with open(weights, "rb") as f:
        head = f.read(16)
    if looks_like_pickle(head):
        raise CheckpointError(f"{weights}: this is a pickle (torch.save) file; it is refused because unpickling "
                              "can run code. Save the weights with safetensors instead.")


def read_tensors(weights: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(weights)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights}: not a readable safetensors file ({exc})") from exc


def convnet_from(weights: Path) -> ConvNet:
    """The ConvNet holding these safetensors weights, or a CheckpointError naming the file and what is wrong."""
    state = read_tensors(weights)
    model = ConvNet()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise CheckpointError(f"{weights}: the tensors do not fit the ConvNet ({' '.join(first[:3])})") from exc
    return model


def graph_from(weights: Path, spec: dict[str, Any]) -> GraphNet:
    """The GraphNet its card describes (a model added from ONNX), holding these weights."""
    state = read_tensors(weights)
    wanted = [f"t{i}" for i in range(len(spec["tensors"]))]
    if sorted(state) != sorted(wanted):
        raise CheckpointError(f"{weights}: holds {len(state)} tensors where its card's graph needs {len(wanted)}")
    try:
        return GraphNet(spec, [state[key] for key in wanted])
    except GraphError as exc:
        raise CheckpointError(f"{weights}: {exc}") from exc


def load(name_or_path: str | Path, device: str | torch.device = "cpu") -> ConvNet | GraphNet:
    """Load a checkpoint in eval mode, its card as `model.card`. Raises CheckpointError saying what is wrong."""
    weights = resolve(name_or_path)
    if not weights.is_file():
        known = ", ".join(available()) or "none"
        raise CheckpointError(f"{weights}: no such checkpoint (shipped: {known})")
    refuse_pickle(weights)
    card = read_card(weights)
    actual = sha256_file(weights)
    if actual != card["weights_sha256"]:
        raise CheckpointError(f"{weights}: its SHA-256 {actual[:12]}… does not match the card's "
                              f"{card['weights_sha256'][:12]}…; the weights and card do not belong together")
    model = graph_from(weights, card["graph"]) if "graph" in card else convnet_from(weights)
    model.card = card
    model = model.to(device)
    if torch.device(device).type == "cpu":
        # oneDNN's CPU convolutions run about 20% faster on channels-last weights (benchmarks/attacks.py).
        model = model.to(memory_format=torch.channels_last)
    return model.eval()


def save(model: ConvNet | GraphNet, path: Path, card: dict[str, Any]) -> Path:
    """Write NAME.safetensors then NAME.json, each whole or not at all."""
    path = path.with_suffix(".safetensors")
    with files.replacing(path) as temporary:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, temporary)
        card = {**card, "weights_sha256": sha256_file(temporary)}
    files.write_text(path.with_suffix(".json"), json.dumps(card, indent=2) + "\n")
    model.card = card
    return path

