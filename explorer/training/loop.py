"""The training loop: any recipe on any dataset, resumable.

Each epoch ends with a resumable state (runs/NAME/state.safetensors + state.json), and a long epoch saves one every
few minutes too. Data order and attack noise are derived from (seed, epoch, batch), so a resumed run sees what an
uninterrupted one would.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm import tqdm

from explorer import attacks, data, models
from explorer.provenance import code_version, now
from explorer.runtime import device_name, pick_device
from explorer.training.recipes import ADVERSARIAL_READING, MINER_REASON, RECIPES, WARMUP_REASON, checkpoint_name
from explorer.training.state import load_state, save_state
from explorer.training.step import accuracy, adversary_eps, batch_loss, learning_rate


class TrainingError(RuntimeError):
    pass


def train(
    recipe_name: str,
    *,
    dataset: str = "mnist",
    runs: Path = Path("runs"),
    out: Path | None = None,
    device: str = "auto",
    seed: int = 0,
    resume: bool = False,
    fresh: bool = False,
    epochs: int | None = None,
    train_limit: int | None = None,
    progress: bool = True,
    save_every_s: float = 300,
) -> Path:
    """Train a recipe on a dataset, saving a resumable state at the end of each epoch and, within one, whenever
    `save_every_s` seconds have passed since the last save (an epoch of PGD twins is an hour on a laptop CPU); write
    the checkpoint and card to `out` (default: the checkpoint folder, named checkpoint_name(recipe, dataset))."""
    if recipe_name not in RECIPES:
        raise TrainingError(f"unknown recipe {recipe_name!r}; choose one of {', '.join(RECIPES)}")
    if dataset not in data.DATASETS:
        raise TrainingError(f"unknown dataset {dataset!r}; choose one of {', '.join(data.DATASETS)}")
    recipe = RECIPES[recipe_name]
    name = checkpoint_name(recipe.name, dataset)
    n_epochs = epochs or recipe.epochs
    run_dir = runs / name
    out = out or models.checkpoint_dir() / f"{name}.safetensors"
    torch_device = pick_device(device)

    train_x, train_y = data.load_split("train", dataset)
    test_x, test_y = data.load_split("test", dataset)
    if train_limit:
        train_x, train_y = train_x[:train_limit], train_y[:train_limit]
    images = data.to_tensor(train_x).to(torch_device)
    labels = torch.from_numpy(train_y).to(torch_device)
    test_images = data.to_tensor(test_x).to(torch_device)
    test_labels = torch.from_numpy(test_y).to(torch_device)

    torch.manual_seed(seed)
    base_card = None
    if recipe.base:
        base = models.load(checkpoint_name(recipe.base, dataset), device=torch_device)
        base_card = base.card
        if models.dataset_of(base_card) != dataset:
            raise TrainingError(f"the base checkpoint {base_card['name']} was trained on "
                                f"{models.dataset_of(base_card)}, not {dataset}")
        model = base.train()
    else:
        model = models.ConvNet().to(torch_device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)

    meta = {"recipe": recipe.name, "dataset": dataset, "epochs_done": 0, "history": [], "seed": seed}
    if (run_dir / "state.json").is_file():
        if resume:
            meta = load_state(run_dir, model, optimizer)
            if (meta["recipe"], meta.get("dataset", "mnist"), meta["seed"]) != (recipe.name, dataset, seed):
                raise TrainingError(f"{run_dir} holds a run of {meta['recipe']} on {meta.get('dataset', 'mnist')} "
                                    f"with seed {meta['seed']}")
        elif not fresh:
            done = json.loads((run_dir / "state.json").read_text(encoding="utf-8")).get("epochs_done")
            raise TrainingError(f"{run_dir} already holds a run ({done} epochs done): pass --resume to continue "
                                "it or --fresh to start over")
    elif resume:
        raise TrainingError(f"nothing to resume in {run_dir}")

    steps_per_epoch = math.ceil(len(images) / recipe.batch_size)
    total_steps = n_epochs * steps_per_epoch
    last_save = time.monotonic()
    for epoch in range(meta["epochs_done"], n_epochs):
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed * 1000 + epoch))
        first_batch = meta.pop("batches_done", 0)  # where a run saved within this epoch stopped
        # seen: digits and their adversarial twins; devices: every machine this epoch ran on
        totals = meta.pop("totals", None) or {"loss": 0.0, "digits": 0, "correct": 0, "seen": 0, "devices": []}
        totals["devices"] = list(dict.fromkeys([*totals["devices"], device_name(torch_device)]))
        bar = tqdm(range(first_batch, steps_per_epoch), desc=f"{name} epoch {epoch + 1}/{n_epochs}",
                   initial=first_batch, total=steps_per_epoch, disable=not progress, leave=False)
        for batch in bar:
            index = order[batch * recipe.batch_size : (batch + 1) * recipe.batch_size].to(torch_device)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(recipe, epoch * steps_per_epoch + batch, total_steps)
            loss, logits = batch_loss(model, recipe, images[index], labels[index],
                                      seed=(seed * 1000 + epoch) * 100_000 + batch,
                                      eps=adversary_eps(recipe, epoch + batch / steps_per_epoch))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            totals["loss"] += float(loss.detach()) * len(index)
            totals["digits"] += len(index)
            totals["correct"] += int((logits.argmax(1) == labels[index].repeat(len(logits) // len(index))).sum())
            totals["seen"] += len(logits)
            bar.set_postfix(loss=f"{totals['loss'] / totals['digits']:.4f}",
                            acc=f"{totals['correct'] / totals['seen']:.4f}")
            if batch + 1 < steps_per_epoch and time.monotonic() - last_save >= save_every_s:
                save_state(run_dir, model, optimizer, {**meta, "batches_done": batch + 1, "totals": totals})
                last_save = time.monotonic()
        model.eval()
        test_accuracy = accuracy(model, test_images, test_labels)
        with torch.no_grad():  # a collapsing triplet run shows here first: the embedding shrinks towards 0
            embedding_norm = float(model.embed(test_images[:1000]).norm(dim=1).mean())
        model.train()
        record = {"epoch": epoch + 1, "train_loss": totals["loss"] / len(images),
                  "train_accuracy": totals["correct"] / totals["seen"], "test_accuracy": test_accuracy,
                  "embedding_norm": embedding_norm, "device": "; ".join(totals["devices"])}
        if recipe.adversary:
            record["adversary_eps"] = adversary_eps(recipe, epoch + 1)
        meta["history"].append(record)
        meta["epochs_done"] = epoch + 1
        save_state(run_dir, model, optimizer, meta)
        last_save = time.monotonic()
        with open(run_dir / "log.jsonl", "a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")
        print(f"{name} epoch {epoch + 1}: loss {record['train_loss']:.4f} "
              f"train acc {record['train_accuracy']:.4f} test acc {test_accuracy:.4f} "
              f"embedding norm {embedding_norm:.2f}", flush=True)

    model.eval()
    unused = ("name", "summary", "miner") if recipe.objective == "triplet" else ("name", "summary", "miner", "margin")
    params = {k: v for k, v in asdict(recipe).items() if k not in unused and v != ""}
    params["epochs"] = n_epochs
    params["train_digits"] = len(images)
    if recipe.objective == "triplet":
        params["miner"] = recipe.miner
        params["miner_reason"] = MINER_REASON[recipe.miner]
        params["head"] = "softmax head trained by cross-entropy on stop-gradient embeddings"
    if recipe.adversary:
        params["adversarial_reading"] = ADVERSARIAL_READING
        params["adversary_params"] = attacks.params_for(recipe.adversary, "paper").as_record()
        if recipe.eps_warmup_epochs:
            params["eps_warmup_reason"] = WARMUP_REASON
    card = {
        "name": name,
        "recipe": recipe.name,
        "dataset": dataset,
        "summary": recipe.summary,
        "params": params,
        "base": None if base_card is None else {"name": base_card["name"],
                                                "weights_sha256": base_card["weights_sha256"]},
        "seed": seed,
        "data_sha256": data.DATASETS[dataset].content_sha256,
        "clean_accuracy": accuracy(model, test_images, test_labels),
        "code_version": code_version(),
        "date": now(),
        # A resumed run may have moved machines: every device any of its epochs ran on ("; " apart, as a CPU's
        # name holds a comma)
        "trained_on": "; ".join(dict.fromkeys(device for record in meta["history"]
                                              for device in record.get("device", "unrecorded").split("; "))),
        "torch": torch.__version__,
        "history": meta["history"],
    }
    return models.save(model.cpu(), out, card)
