"""The batches of an evaluation attacked by this process or by Ray workers give the same outcomes, digit by digit."""

import sys

import pytest
import torch
from extras import install

from explorer import attacks, data
from explorer.evaluation import runners


def jobs(mnist_test, batches=3, size=24):
    images, labels = data.to_tensor(mnist_test[0][: batches * size]), torch.from_numpy(mnist_test[1][: batches * size])
    return [{"images": images[i : i + size], "labels": labels[i : i + size], "attack": attacks.Attack.of("pgd"),
             "eps": [0.1, 0.3],
             "seed": i} for i in range(0, batches * size, size)]


def test_the_local_runner_runs_every_job_in_order(mnist_test, softmax_model):
    work = jobs(mnist_test, batches=2)
    done = list(runners.LocalRunner().map(runners.attack_batch, softmax_model, work))
    assert [index for index, _ in done] == [0, 1]
    expected = attacks.run(softmax_model, work[1]["images"], work[1]["labels"], "pgd", [0.1, 0.3], seed=24)
    assert torch.equal(done[1][1][0], expected.fooled)


def test_ray_workers_give_the_same_outcomes_as_this_process(mnist_test, softmax_model):
    install("ray", "ray")
    work = jobs(mnist_test)
    local = dict(runners.LocalRunner().map(runners.attack_batch, softmax_model, work))
    runner = runners.RayRunner(local_cpus=2)
    try:
        assert runner.workers == 2
        remote = dict(runner.map(runners.attack_batch, softmax_model, work))
    finally:
        runner.shutdown()
    assert sorted(remote) == [0, 1, 2]
    for index, (fooled, zero_gradient) in local.items():
        assert torch.equal(remote[index][0], fooled) and torch.equal(remote[index][1], zero_gradient), index
    everything = torch.cat([fooled for fooled, _ in local.values()], 1)
    assert 0 < int(everything[0].sum()) < int(everything[1].sum())  # outcomes that differ, so equality means much


def test_without_ray_the_message_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(runners.RunnerError, match=r"pip install 'explorer\[ray\]'"):
        runners.RayRunner()


def test_explorer_evaluate_on_ray_writes_what_it_writes_without(tmp_path, monkeypatch, capsys):
    import json

    from explorer import cli, runtime

    install("ray", "ray")
    monkeypatch.setattr(runtime, "keep_freed_memory", lambda: False)  # keep the test process's own allocator
    written = {}
    for where, extra in (("alone", []), ("ray", ["--ray"])):
        arguments = ["evaluate", "--converged", "--models", "softmax", "--converged-digits", "60", "--budget",
                     "1000", "--batch-size", "20", "--results", str(tmp_path / where), "--runs", str(tmp_path / where)]
        assert cli.main(arguments + extra) == 0
        content = json.loads((tmp_path / where / "converged.json").read_text(encoding="utf-8"))
        written[where] = content["models"]["softmax"]
    assert "attacking on Ray" in capsys.readouterr().out
    for key in ("robust_accuracy", "ensemble_accuracy", "broken_by", "converged"):
        assert written["ray"][key] == written["alone"][key], key
    assert [c["broke"] for c in written["ray"]["components"]] == [c["broke"] for c in written["alone"]["components"]]
