"""A run's resumable state: the weights and the optimizer's moments in safetensors (resuming never unpickles
anything), the epoch, batch and running totals in JSON."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from explorer import files, models


def save_state(run_dir: Path, model: models.ConvNet, optimizer: torch.optim.Optimizer, meta: dict) -> None:
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            tensors[f"optim.{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous()
    # The weights go first: a crash between the two files leaves the older meta, which resumes a redo of the
    # batches since the last save from newer weights, never a meta that points past the weights.
    with files.replacing(run_dir / "state.safetensors") as temporary:
        save_file(tensors, temporary)
    files.write_text(run_dir / "state.json", json.dumps(meta, indent=2))


def load_state(run_dir: Path, model: models.ConvNet, optimizer: torch.optim.Optimizer) -> dict:
    meta = json.loads((run_dir / "state.json").read_text(encoding="utf-8"))
    tensors = load_file(run_dir / "state.safetensors")
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    saved = optimizer.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": saved["param_groups"]})
    return meta
