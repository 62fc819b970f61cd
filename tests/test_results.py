"""Re-running one model's rows keeps the others' untouched, and refuses to mix results made in different ways."""

import json

import pytest
import torch

from explorer import attacks
from explorer.evaluation import evaluate, reports, results, table1
from explorer.evaluation.batch_store import BatchStore


def shrunk_table1(folder, digits: int) -> dict:
    """The committed Table 1 as if it had been made on `digits` digits: a file a small re-run may join."""
    content = results.committed("table1")
    for part in (*content["tables"].values(), content["paper_pattern"]):
        part["digits"] = digits
    content["made_by"]["batch_size"] = digits
    results.write(folder / "table1.json", content)
    return content


def run_of_each_row(caption: str) -> dict[str, str]:
    """Row name -> the run the caption names for it ("cpu (...), code ..., day")."""
    rows_and_runs = (run.partition(" on ") for run in caption.split("`: ", 1)[1].split("; "))
    return {row: where for rows, _, where in rows_and_runs for row in rows.split(", ")}


def test_one_model_re_runs_into_the_table_and_the_others_rows_stay(tmp_path):
    earlier = shrunk_table1(tmp_path, digits=4)
    store = BatchStore(tmp_path / "batches")
    content = reports.write_table1(tmp_path, names=["triplet"], progress=False, store=store)  # settings from the file
    assert not store.folder.exists()  # emptied once the file it served is written
    for part in ("models", "sensitivity", "tables"):
        assert list(content[part]) == list(earlier[part])  # same order, same keys
    for row in ("Softmax", "Ours_PGD", "Ours_FGSM"):
        assert content["models"][row] == earlier["models"][row]
        for preset in ("paper", "strong"):
            assert content["tables"][preset]["rows"][row] == earlier["tables"][preset]["rows"][row]
            assert content["sensitivity"][preset][row] == earlier["sensitivity"][preset][row]
        assert content["paper_pattern"]["rows"][row] == earlier["paper_pattern"]["rows"][row]
    fresh = content["tables"]["paper"]["rows"]["Ours"]
    assert all(len(bits) == 4 for bits in fresh["recorded_fooled"].values())
    assert content["models"]["Ours"]["evaluated"]["device"].startswith("cpu")
    assert run_of_each_row(results.how_made(content))["Ours"].startswith("cpu")  # the caption tells it apart
    assert (tmp_path / "table1.md").read_text(encoding="utf-8") == table1.markdown(content, content["flags"])


def test_a_re_run_refuses_a_file_it_cannot_join(tmp_path):
    with pytest.raises(results.ResultsError, match="does not exist yet"):
        reports.write_table1(tmp_path, names=["triplet"], progress=False)
    shrunk_table1(tmp_path, digits=4)
    with pytest.raises(results.ResultsError, match=r"other settings \(strong\)"):
        reports.write_table1(tmp_path, names=["triplet"], strong_digits=5, progress=False)
    with pytest.raises(results.ResultsError, match="not a Table 1 model: nope"):
        reports.write_table1(tmp_path, names=["nope"], progress=False)
    changed = json.loads((tmp_path / "table1.json").read_text(encoding="utf-8"))
    changed["models"]["Softmax"]["weights_sha256"] = "0" * 64
    results.write(tmp_path / "table1.json", changed)
    with pytest.raises(results.ResultsError, match="holds softmax as it was before its checkpoint changed"):
        reports.write_table1(tmp_path, names=["triplet"], progress=False)


def test_sweeps_and_latent_refuse_the_same_way(tmp_path):
    sweeps = results.committed("sweeps")
    sweeps["eps"] = sweeps["eps"][:-1]
    results.write(tmp_path / "sweeps.json", sweeps)
    with pytest.raises(results.ResultsError, match=r"other settings \(eps\)"):
        reports.write_sweeps(tmp_path, names=["triplet"], progress=False)
    latent = results.committed("latent")
    del latent["models"]["softmax"]
    results.write(tmp_path / "latent.json", latent)
    with pytest.raises(results.ResultsError, match="has no row for softmax"):
        reports.write_latent(tmp_path, names=["triplet"])


def test_a_damaged_file_is_refused_before_any_attack_runs(tmp_path):
    (tmp_path / "table1.json").write_text('{"made_by": ', encoding="utf-8")
    with pytest.raises(results.ResultsError, match=r"table1\.json is damaged or older than this code"):
        reports.write_table1(tmp_path, names=["triplet"], progress=False)
    partial = results.committed("table1")
    del partial["sensitivity"]["strong"]["Softmax"]  # a row the merge would only miss after hours of attacks
    results.write(tmp_path / "table1.json", partial)
    with pytest.raises(results.ResultsError, match=r"has no row for softmax in sensitivity\.strong"):
        reports.write_table1(tmp_path, names=["triplet"], progress=False)


def test_an_interrupted_evaluation_goes_on_from_its_finished_batches(tmp_path, digits, softmax_model, monkeypatch):
    images, labels = digits[0][:12], digits[1][:12]
    options = {"batch_size": 4, "progress": False, "preset": "strong"}
    whole = evaluate.outcomes(softmax_model, images, labels, "pgd", [0.1, 0.3], **options)
    attacked, real_run = [], attacks.run

    def run_until_stopped(*args, **kwargs):
        if len(attacked) == stop_after:
            raise KeyboardInterrupt
        attacked.append(kwargs["seed"])
        return real_run(*args, **kwargs)

    monkeypatch.setattr(attacks, "run", run_until_stopped)
    store, stop_after = BatchStore(tmp_path / "batches"), 2
    with pytest.raises(KeyboardInterrupt):
        evaluate.outcomes(softmax_model, images, labels, "pgd", [0.1, 0.3], store=store, **options)
    assert len(store) == 2
    attacked.clear()
    stop_after = None
    resumed = evaluate.outcomes(softmax_model, images, labels, "pgd", [0.1, 0.3], store=store, **options)
    assert attacked == [8]  # only the batch the interruption cut off
    assert torch.equal(resumed.fooled, whole.fooled)  # random starts and all, as if never stopped
    assert torch.equal(resumed.zero_gradient, whole.zero_gradient)

    damaged = sorted(store.folder.glob("*.npz"))[0]
    damaged.write_bytes(b"not an npz")
    attacked.clear()
    again = evaluate.outcomes(softmax_model, images, labels, "pgd", [0.1, 0.3], store=store, **options)
    assert len(attacked) == 1 and torch.equal(again.fooled, whole.fooled)  # a damaged batch is attacked again

    def attacked_afresh(**changes) -> int:
        attacked.clear()
        call = {"labels": labels, "eps": [0.1, 0.3], **options, **changes}
        evaluate.outcomes(softmax_model, images, attack="pgd", store=store, **call)
        return len(attacked)

    # anything else that changes the outcome misses the kept batches
    assert attacked_afresh(eps=[0.1, 0.2]) == attacked_afresh(steps=7) == attacked_afresh(labels=labels.roll(1)) == 3


def test_the_converged_file_takes_one_model_at_a_time_and_refuses_other_settings(tmp_path):
    first = reports.write_converged(tmp_path, names=["triplet"], digits=12, budget=500, batch_size=6,
                                    progress=False)
    row = first["models"]["triplet"]
    assert row["digits"] == 12 and len(row["broken_by"]) == 12 and row["convergence"]["budget"] == 500
    assert row["robust_accuracy"] == row["broken_by"].count(".") / 12
    assert first["made_by"]["components"][0] == {"attack": "apgd-ce", "params": attacks.params_for("apgd-ce")
                                                 .as_record()}
    second = reports.write_converged(tmp_path, names=["triplet-fgsm"], progress=False)  # settings from the file
    assert list(second["models"]) == ["triplet", "triplet-fgsm"] and second["models"]["triplet"] == row
    assert second["models"]["triplet-fgsm"]["convergence"]["budget"] == 500
    with pytest.raises(results.ResultsError, match="other settings"):
        reports.write_converged(tmp_path, names=["triplet-fgsm"], digits=24, progress=False)
    with pytest.raises(results.ResultsError, match="no checkpoint named"):
        reports.write_converged(tmp_path, names=["dropout"], progress=False)


def test_a_converged_run_begun_on_another_machine_finishes_here_and_its_row_says_so(tmp_path, monkeypatch):
    with monkeypatch.context() as elsewhere:  # the batches of a machine with another torch
        elsewhere.setattr(torch, "__version__", "9.9.9")
        there = BatchStore(tmp_path / "batches")
    monkeypatch.setattr(there, "clear", lambda: None)  # that machine stopped before writing its file
    settings = {"names": ["triplet"], "digits": 12, "batch_size": 6, "progress": False}
    made_there = reports.write_converged(tmp_path / "there", store=there, **settings)["models"]["triplet"]
    finished_there = len(there)

    def no_attack(*args, **kwargs):
        raise AssertionError("a batch was attacked again")

    monkeypatch.setattr(attacks, "run", no_attack)
    with pytest.raises(AssertionError, match="attacked again"):  # by default only this machine's batches count
        reports.write_converged(tmp_path / "here", store=BatchStore(tmp_path / "batches"), **settings)
    here = BatchStore(tmp_path / "batches", adopt="cpu/9.9.9")
    content = reports.write_converged(tmp_path / "here", store=here, **settings)
    row = content["models"]["triplet"]
    assert row["broken_by"] == made_there["broken_by"] and row["robust_accuracy"] == made_there["robust_accuracy"]
    assert row["evaluated"]["adopted"] == {"batches": finished_there, "device": "cpu", "torch": "9.9.9"}
    assert "earlier on cpu, torch 9.9.9" in run_of_each_row(results.how_made(content))["triplet"]
    with pytest.raises(ValueError, match="DEVICE/TORCH_VERSION"):
        BatchStore(tmp_path / "batches", adopt="h200")


def test_another_datasets_models_are_evaluated_into_a_folder_of_their_own(tmp_path, with_fashion_model):
    from explorer import data, models
    from explorer.models import forward

    content = reports.write_converged(tmp_path / "results", names=["fashion-new"], digits=20,
                                      batch_size=20, device="cpu", progress=False)
    assert (tmp_path / "results" / "fashion-mnist" / "converged.json").is_file()
    assert not (tmp_path / "results" / "converged.json").exists()
    assert content["made_by"]["data_sha256"] == data.FASHION_MNIST.content_sha256
    assert "Fashion-MNIST test set" in content["made_by"]["digits_are"]
    images, labels = data.load_split("test", "fashion-mnist")
    wrong = forward.misclassified(models.load("fashion-new"), data.to_tensor(images[:20]),
                                   torch.from_numpy(labels[:20]))
    assert content["models"]["fashion-new"]["clean_accuracy"] == 1 - float(wrong.double().mean())
    with pytest.raises(results.ResultsError, match="learned different datasets"):
        reports.write_converged(tmp_path / "results", names=["softmax", "fashion-new"], digits=20)


def test_a_converged_run_continues_from_the_committed_ensemble_of_the_same_weights_and_digits(tmp_path, monkeypatch):
    """`triplet`'s committed row broke every digit in the ensemble: continuing from it attacks nothing again."""
    committed = results.COMMITTED / "converged.json"

    def no_attack(*args, **kwargs):
        raise AssertionError("a digit was attacked again")

    monkeypatch.setattr(attacks, "run", no_attack)
    content = reports.write_converged(tmp_path, names=["triplet"], continue_from=committed, progress=False)
    row, before = content["models"]["triplet"], results.committed("converged")["models"]["triplet"]
    assert row["broken_by"] == before["broken_by"] and row["robust_accuracy"] == 0 and row["converged"]
    assert row["evaluated"]["ensemble_from"]["code_version"] == before["evaluated"]["code_version"]
    with pytest.raises(results.ResultsError, match="no row of triplet's shipped weights on 12 digits"):
        reports.write_converged(tmp_path, names=["triplet"], digits=12, continue_from=committed, progress=False)
    with pytest.raises(results.ResultsError, match="cannot read the converged rows"):
        reports.write_converged(tmp_path, names=["triplet"], continue_from=tmp_path / "none.json", progress=False)
    old_rule = results.committed("converged")
    for r in old_rule["models"]["triplet-pgd"]["rounds"]:
        r.pop("confirms", None)
    (tmp_path / "old-rule.json").write_text(json.dumps(old_rule), encoding="utf-8")
    with pytest.raises(results.ResultsError, match=r"row of triplet-pgd: its rounds were made before the confirming "
                       r"round .* cannot go on: run without --continue-from"):
        reports.write_converged(tmp_path, names=["triplet-pgd"], continue_from=tmp_path / "old-rule.json",
                                progress=False)
