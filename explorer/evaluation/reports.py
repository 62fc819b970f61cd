"""What `explorer evaluate` runs: Table 1 and its flags, the eps sweeps, the latent geometry and the converged
evaluation, each of the checkpoints named into its result file (results.py), the other checkpoints' rows kept from
the file already there. Table 1 and the sweeps are the paper's, on MNIST; the latent geometry and the converged
evaluation of another dataset's models go to results/DATASET/.

Each file records the settings all its rows share, and each row the run that made it.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from explorer import data, latent, models
from explorer.evaluation import ensemble, sweeps, table1
from explorer.evaluation.batch_store import BatchStore
from explorer.evaluation.results import Earlier, Layout, ResultsError, results_folder, write
from explorer.provenance import code_version, now, sha256_file
from explorer.runtime import device_name, float32_mode, pick_device

TABLE1 = Layout("table1", parts=(("models",), ("tables", "paper", "rows"), ("tables", "strong", "rows"),
                                 ("sensitivity", "paper"), ("sensitivity", "strong"), ("paper_pattern", "rows")),
                settings={"paper": ("tables", "paper", "digits"), "strong": ("tables", "strong", "digits"),
                          "checks": ("paper_pattern", "digits"), "batch_size": ("made_by", "batch_size")},
                derived=("flags",))
SWEEPS = Layout("sweeps", parts=(("models",), ("accuracy",), ("smallest_flipping_eps",)),
                settings={"digits": ("digits",), "batch_size": ("made_by", "batch_size")})
LATENT = Layout("latent")
CONVERGED = Layout("converged", settings={key: ("made_by", key) for key in ("digits", "budget", "square",
                                                                            "batch_size")}, complete=False)

TABLE1_DEFAULTS = {"paper": 10_000, "strong": 1_000, "checks": 1_000, "batch_size": 500}
SWEEPS_DEFAULTS = {"digits": 500, "batch_size": 100}
CONVERGED_DEFAULTS = {"digits": 10_000, "budget": ensemble.DEFAULT_BUDGET, "square": "sample", "batch_size": 500}


def model_provenance(model: models.ConvNet, device: torch.device) -> dict:
    """Which weights a row is of, and the run that evaluated them: rows re-run later carry their own."""
    return {"weights_sha256": model.card["weights_sha256"],
            "card_sha256": sha256_file(models.resolve(model.card["name"]).with_suffix(".json")),
            "evaluated": {"code_version": code_version(), "date": now(), "device": device_name(device),
                          "torch": torch.__version__, "float32": float32_mode(device)}}


def shipped_weights(names: list[str]) -> dict[str, str]:
    return {name: models.load(name).card["weights_sha256"] for name in names}


def made_by(command: str, dataset: str = "mnist", **settings) -> dict:
    """What every row of a result file shares; a row may only join a file whose settings are its own."""
    spec = data.DATASETS[dataset]
    images_are = ("the first N digits of the MNIST test set" if dataset == "mnist"
                  else f"the first N images of the {spec.title} test set")
    return {"command": command, "data_sha256": spec.content_sha256, "digits_are": images_are,
            "seed": "batch b of the attack loop is seeded with its first digit's index", **settings}


def first_test_digits(count: int, device: torch.device, dataset: str = "mnist") -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = data.load_split("test", dataset)
    return data.to_tensor(images[:count]).to(device), torch.from_numpy(labels[:count]).to(device)


def checkpoints_of(names: list[str] | None) -> tuple[str, list[str]]:
    """The dataset the checkpoints `names` learned (MNIST when none are named) and every checkpoint of it."""
    catalogue = models.catalogue()
    if unknown := sorted(set(names or []) - set(catalogue)):
        raise ResultsError(f"no checkpoint named {', '.join(unknown)}; choose from {', '.join(catalogue)}")
    datasets = sorted({catalogue[name] for name in names}) if names else ["mnist"]
    if len(datasets) > 1:
        raise ResultsError(f"these checkpoints learned different datasets ({', '.join(datasets)}): evaluate each "
                           "dataset's models in a run of its own")
    return datasets[0], [name for name, of in catalogue.items() if of == datasets[0]]


def rows_to_run(names: list[str] | None) -> list[str]:
    """Table 1 rows ("Softmax", ...) of the checkpoint names asked for; all of them when none are named."""
    if not names:
        return list(table1.ROWS)
    unknown = sorted(set(names) - set(table1.ROWS.values()))
    if unknown:
        raise ResultsError(f"not a Table 1 model: {', '.join(unknown)}; choose from {', '.join(table1.ROWS.values())}")
    return [row for row, name in table1.ROWS.items() if name in names]


def write_table1(results: Path, *, names: list[str] | None = None, digits: int | None = None,
                 strong_digits: int | None = None, check_digits: int | None = None, batch_size: int | None = None,
                 device: str = "auto", progress: bool = True, store: BatchStore | None = None) -> dict:
    """Evaluate the Table 1 models `names` (all four when None) and write results/table1.json and table1.md.
    Named models replace their own rows; the others are kept from the file already there. `store` keeps finished
    batches until the file is written, so an interrupted run goes on where it stopped."""
    run = rows_to_run(names)
    earlier = Earlier(results, TABLE1, [row for row in table1.ROWS if row not in run])
    options = earlier.options({"paper": digits, "strong": strong_digits, "checks": check_digits,
                               "batch_size": batch_size}, TABLE1_DEFAULTS)
    batch_size, check_digits = options["batch_size"], options["checks"]
    torch_device = pick_device(device)
    loaded = {row: models.load(table1.ROWS[row], device=torch_device) for row in run}
    presets = ("paper", "strong")
    content = {"made_by": made_by("explorer evaluate --table1", eps=table1.EPS, batch_size=batch_size,
                                  presets={p: table1.preset_params(p) for p in presets}),
               "models": {row: {"checkpoint": table1.ROWS[row], **model_provenance(model, torch_device)}
                          for row, model in loaded.items()},
               "paper": table1.PAPER,
               "tables": {preset: {"digits": options[preset], "rows": {}} for preset in presets},
               "sensitivity": {preset: {} for preset in presets},
               "paper_pattern": {"digits": check_digits, "rows": {}}}
    earlier.check(content, shipped_weights([table1.ROWS[row] for row in earlier.keep]))
    for preset in presets:
        images, labels = first_test_digits(options[preset], torch_device)
        content["tables"][preset]["rows"] = {
            row: table1.evaluate_model(model, images, labels, preset, batch_size, progress, store)
            for row, model in loaded.items()}
        print(f"{preset}: {options[preset]} digits done", flush=True)
    images, labels = first_test_digits(check_digits, torch_device)
    content["sensitivity"] = {preset: {row: table1.sensitivity(model, images, labels, preset, batch_size, progress,
                                                               store) for row, model in loaded.items()}
                              for preset in presets}
    content["paper_pattern"]["rows"] = {row: table1.paper_pattern(model, images, labels, batch_size, progress, store)
                                        for row, model in loaded.items()}
    earlier.merge(content, table1.ROWS)
    if store is not None:
        store.clear()
    return refresh_flags(results)


def refresh_flags(results: Path) -> dict:
    """Re-derive table1's flags from table1.json and sweeps.json (either may be newer) and rewrite table1.md."""
    content = json.loads((results / "table1.json").read_text(encoding="utf-8"))
    sweep_path = results / "sweeps.json"
    sweeps = json.loads(sweep_path.read_text(encoding="utf-8")) if sweep_path.is_file() else None
    content["flags"] = table1.flags(content, sweeps)
    write(results / "table1.json", content)
    (results / "table1.md").write_text(table1.markdown(content, content["flags"]), encoding="utf-8")
    return content


def write_sweeps(results: Path, *, names: list[str] | None = None, digits: int | None = None,
                 batch_size: int | None = None, device: str = "auto", progress: bool = True,
                 store: BatchStore | None = None) -> dict:
    """Sweep eps for the Table 1 models `names` (all four when None) into results/sweeps.json, keeping the other
    models' sweeps from the file already there; `store` as for `write_table1`."""
    run = [table1.ROWS[row] for row in rows_to_run(names)]
    earlier = Earlier(results, SWEEPS, [name for name in table1.ROWS.values() if name not in run])
    options = earlier.options({"digits": digits, "batch_size": batch_size}, SWEEPS_DEFAULTS)
    torch_device = pick_device(device)
    content = {"made_by": made_by("explorer evaluate --sweeps", batch_size=options["batch_size"],
                                  presets={p: table1.preset_params(p) for p in ("paper", "strong")}),
               "digits": options["digits"], "eps": sweeps.EPS_GRID, "models": {}, "accuracy": {},
               "smallest_flipping_eps": {}}
    earlier.check(content, shipped_weights(earlier.keep))
    images, labels = first_test_digits(options["digits"], torch_device)
    for name in run:
        model = models.load(name, device=torch_device)
        content["models"][name] = model_provenance(model, torch_device)
        content["accuracy"][name], content["smallest_flipping_eps"][name] = {}, {}
        for preset in ("paper", "strong"):
            result = sweeps.sweep(model, images, labels, preset, batch_size=options["batch_size"], progress=progress,
                                  store=store)
            content["accuracy"][name][preset] = result["accuracy"]
            content["smallest_flipping_eps"][name][preset] = result["smallest_flipping_eps"]
        print(f"sweeps: {name} done", flush=True)
    content = earlier.merge(content, table1.ROWS.values())
    if store is not None:
        store.clear()
    if (results / "table1.json").is_file():
        refresh_flags(results)
    return content


def write_latent(results: Path, *, names: list[str] | None = None) -> dict:
    """Latent geometry of the checkpoints `names` (all MNIST ones when None) into latent.json of their dataset's
    results folder, keeping the other checkpoints' rows from the file already there."""
    dataset, shipped = checkpoints_of(names)
    run = names or shipped
    earlier = Earlier(results_folder(results, dataset), LATENT, [name for name in shipped if name not in run])
    content = {"made_by": {"command": "explorer evaluate --latent",
                           "data_sha256": data.DATASETS[dataset].content_sha256,
                           "digits": latent.images_used(dataset)}, "models": {}}
    earlier.check(content, shipped_weights(earlier.keep))
    fresh = latent.report(run, dataset)
    cpu = torch.device("cpu")
    content["models"] = {name: {**fresh[name], **model_provenance(models.load(name), cpu)} for name in run}
    return earlier.merge(content, shipped)


def ensemble_record(dataset: str) -> list[dict]:
    """The ensemble's attacks as converged.json records them."""
    return [{"attack": kind, "params": ensemble.component(kind, dataset).params.as_record()}
            for kind in ensemble.COMPONENTS]


def escalation_record() -> dict:
    return {"attack": ensemble.ESCALATION, "first_round": ensemble.round_settings(1),
            "later_rounds": "each doubles the steps or the restarts in turn", "tolerance": ensemble.TOLERANCE}


def earlier_ensembles(path: Path, names: list[str], digits: int, dataset: str) -> dict[str, dict]:
    """The rows of `path` that can stand in for the ensemble of `names` (and whose rounds, if any, the escalation
    goes on from): made on the same data, the same number of digits at the same eps, with the same components (and
    escalation), of the weights shipped now. Refuses anything else."""
    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))
        rows, settings = earlier["models"], earlier["made_by"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ResultsError(f"cannot read the converged rows of {path} ({exc}): pass a converged.json") from exc
    same_ensemble = [c for c in settings.get("components", []) if c["attack"] != "square"] == ensemble_record(dataset)
    kept = {}
    for name in names:
        model, row = models.load(name), rows.get(name, {})
        same_rounds = not row.get("rounds") or settings.get("escalation") == escalation_record()
        matches = (same_ensemble and same_rounds and row.get("weights_sha256") == model.card["weights_sha256"]
                   and row.get("digits") == digits and row.get("eps") == table1.EPS
                   and settings.get("data_sha256") == data.DATASETS[models.dataset_of(model.card)].content_sha256)
        if not matches:
            raise ResultsError(f"{path} holds no row of {name}'s shipped weights on {digits:,} digits at eps "
                               f"{table1.EPS} with this ensemble and escalation: run without --continue-from")
        try:
            ensemble.adopt_rounds(row, ensemble.FIRST_ROUND)
        except ValueError as exc:
            raise ResultsError(f"{path}'s row of {name}: {exc}: run without --continue-from") from exc
        except (KeyError, TypeError) as exc:
            raise ResultsError(f"{path}'s row of {name} is damaged ({type(exc).__name__}: {exc}): restore it with "
                               "git, or run without --continue-from") from exc
        kept[name] = row
    return kept


def write_converged(results: Path, *, names: list[str] | None = None, digits: int | None = None,
                    budget: int | None = None, square: str | None = None, batch_size: int | None = None,
                    device: str = "auto", progress: bool = True, store: BatchStore | None = None,
                    continue_from: Path | None = None) -> dict:
    """The converged evaluation (evaluation/ensemble.py) of the checkpoints `names` (all MNIST ones when None) into
    converged.json of their dataset's results folder, keeping the other checkpoints' rows from the file already
    there. The file is written after each model, so a long run keeps what it finished; `store` keeps the finished
    batches of the model under way. `continue_from`: an earlier converged.json whose rows of the same weights, digits
    and eps stand in for the ensemble, the rounds going on from the digits they left standing."""
    dataset, shipped = checkpoints_of(names)
    run = names or shipped
    earlier = Earlier(results_folder(results, dataset), CONVERGED, [name for name in shipped if name not in run])
    options = earlier.options({"digits": digits, "budget": budget, "square": square, "batch_size": batch_size},
                              CONVERGED_DEFAULTS)
    test_size = data.DATASETS[dataset].split_sizes["test"]
    if not 1 <= options["digits"] <= test_size or options["budget"] < 1 or options["batch_size"] < 1:
        raise ResultsError(f"--converged-digits must be 1..{test_size:,} and --budget and --batch-size at least 1, "
                           f"not {options['digits']}, {options['budget']} and {options['batch_size']}")
    if options["square"] not in ensemble.SQUARE_MODES:
        raise ResultsError(f"--square must be one of {', '.join(ensemble.SQUARE_MODES)}, not {options['square']!r}")
    torch_device = pick_device(device)
    content = {"made_by": made_by("explorer evaluate --converged", dataset, eps=table1.EPS, **options,
                                  components=ensemble_record(dataset),
                                  escalation=escalation_record(),
                                  beyond={"attack": "apgd-ce", "eps_above": list(ensemble.BEYOND)},
                                  square_sample=dict(zip(("share", "fewest"), ensemble.SQUARE_SAMPLE, strict=True))),
               "models": {}}
    earlier.check(content, shipped_weights(earlier.keep))
    images, labels = first_test_digits(options["digits"], torch_device, dataset)
    earlier_rows = earlier_ensembles(continue_from, run, options["digits"], dataset) if continue_from else {}
    for name in run:
        model = models.load(name, device=torch_device)
        adopted_before = store.adopted if store is not None else 0
        row = ensemble.evaluate(model, images, labels, table1.EPS, budget=options["budget"],
                                square=options["square"], batch_size=options["batch_size"], store=store,
                                earlier=earlier_rows.get(name), progress=progress, dataset=dataset)
        provenance = model_provenance(model, torch_device)
        if name in earlier_rows:
            provenance["evaluated"]["ensemble_from"] = {"file": str(continue_from),
                                                        **earlier_rows[name]["evaluated"]}
        if store is not None and store.adopted > adopted_before:
            provenance["evaluated"]["adopted"] = {"batches": store.adopted - adopted_before, **store.adopted_from}
        content["models"][name] = {**provenance, **row}
        merged = earlier.merge(content, shipped)
        print(f"converged: {name} {row['robust_accuracy']:.2%} ({row['convergence']['says']})", flush=True)
    if store is not None:
        store.clear()
    return merged
