"""Write the evaluation files in results/: Table 1 and its flags, the eps sweeps. Each records how it was made."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from explorer import data, models, sweeps, table1
from explorer.provenance import code_version, now, sha256_file
from explorer.train import device_name, pick_device

COMMITTED = Path(__file__).resolve().parent.parent / "results"


def committed(name: str) -> dict:
    """A committed result file by name ("table1", "sweeps", "latent"), as the app shows it."""
    return json.loads((COMMITTED / f"{name}.json").read_text())


def write_json(path: Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(content, indent=2) + "\n")
    os.replace(temporary, path)


def model_provenance(model: models.ConvNet) -> dict[str, str]:
    return {"weights_sha256": model.card["weights_sha256"],
            "card_sha256": sha256_file(models.resolve(model.card["name"]).with_suffix(".json"))}


def full_precision(device: torch.device) -> torch.device:
    """TF32 convolutions round differently from the CPU and flip a few boundary digits: results must re-run."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    return device


def made_by(command: str, device: torch.device, **details) -> dict:
    return {"command": command, "code_version": code_version(), "date": now(), "device": device_name(device),
            "float32": "full (no TF32)",
            "torch": torch.__version__, "data_sha256": data.MNIST.content_sha256,
            "digits_are": "the first N digits of the MNIST test set", "seed": "batch b of the attack loop is "
            "seeded with its first digit's index", **details}


def first_test_digits(count: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = data.load_mnist("test")
    return data.to_tensor(images[:count]).to(device), torch.from_numpy(labels[:count]).to(device)


def write_table1(results: Path, *, digits: int, strong_digits: int, check_digits: int, batch_size: int,
                 device: str = "auto", progress: bool = True) -> dict:
    torch_device = full_precision(pick_device(device))
    loaded = {row: models.load(name, device=torch_device) for row, name in table1.ROWS.items()}
    content = {
        "made_by": made_by("explorer evaluate --table1", torch_device, eps=table1.EPS, batch_size=batch_size,
                           presets={p: table1.preset_params(p) for p in ("paper", "strong")}),
        "models": {row: {"checkpoint": table1.ROWS[row], **model_provenance(model)} for row, model in loaded.items()},
        "paper": table1.PAPER,
        "tables": {},
        "sensitivity": {},
    }
    for preset, count in (("paper", digits), ("strong", strong_digits)):
        images, labels = first_test_digits(count, torch_device)
        content["tables"][preset] = {"digits": count, "rows": {
            row: table1.evaluate_model(model, images, labels, preset, batch_size, progress)
            for row, model in loaded.items()}}
        print(f"{preset}: {count} digits done", flush=True)
    images, labels = first_test_digits(check_digits, torch_device)
    for preset in ("paper", "strong"):
        content["sensitivity"][preset] = {row: table1.sensitivity(model, images, labels, preset, batch_size, progress)
                                          for row, model in loaded.items()}
    content["paper_pattern"] = {"digits": check_digits, "rows": {
        row: table1.paper_pattern(model, images, labels, batch_size, progress) for row, model in loaded.items()}}
    write_json(results / "table1.json", content)
    return refresh_flags(results)


def refresh_flags(results: Path) -> dict:
    """Re-derive table1's flags from table1.json and sweeps.json (either may be newer) and rewrite table1.md."""
    content = json.loads((results / "table1.json").read_text())
    sweep_path = results / "sweeps.json"
    content["flags"] = table1.flags(content, json.loads(sweep_path.read_text()) if sweep_path.is_file() else None)
    write_json(results / "table1.json", content)
    (results / "table1.md").write_text(table1.markdown(content, content["flags"]))
    return content


def write_sweeps(results: Path, *, digits: int, batch_size: int, device: str = "auto",
                 progress: bool = True) -> dict:
    torch_device = full_precision(pick_device(device))
    images, labels = first_test_digits(digits, torch_device)
    content = {"made_by": made_by("explorer evaluate --sweeps", torch_device, batch_size=batch_size,
                                  presets={p: table1.preset_params(p) for p in ("paper", "strong")}),
               "digits": digits, "eps": sweeps.EPS_GRID, "models": {}, "accuracy": {}, "smallest_flipping_eps": {}}
    for name in table1.ROWS.values():
        model = models.load(name, device=torch_device)
        content["models"][name] = model_provenance(model)
        content["accuracy"][name], content["smallest_flipping_eps"][name] = {}, {}
        for preset in ("paper", "strong"):
            result = sweeps.sweep(model, images, labels, preset, batch_size=batch_size, progress=progress)
            content["accuracy"][name][preset] = result["accuracy"]
            content["smallest_flipping_eps"][name][preset] = result["smallest_flipping_eps"]
        print(f"sweeps: {name} done", flush=True)
    write_json(results / "sweeps.json", content)
    if (results / "table1.json").is_file():
        refresh_flags(results)
    return content
