import argparse
import subprocess
import sys

import pytest
from PIL import Image

from explorer import cli, runtime
from explorer.evaluation import reports
from explorer.plots import gallery


def explorer(*args):
    return subprocess.run([sys.executable, "-m", "explorer.cli", *args], capture_output=True, text=True, timeout=300)


def subcommands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """Every command line that ends in a subcommand, with its parser: ("data", "fetch"), ("attack",), ..."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield (*path, name), child
                yield from subcommands(child, (*path, name))


def test_every_subcommand_explains_each_of_its_options(capsys):
    commands = dict(subcommands(cli.build_parser()))
    assert {c[0] for c in commands} >= {"data", "models", "attack", "gallery", "figure2", "layouts", "evaluate",
                                         "train"}
    for command, parser in commands.items():
        with pytest.raises(SystemExit) as exit_info:
            cli.main([*command, "--help"])
        assert exit_info.value.code == 0
        printed = capsys.readouterr().out
        assert printed.startswith(f"usage: explorer {' '.join(command)}")
        for action in parser._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"explorer {' '.join(command)} {action.option_strings[0]} has no help"
                assert action.option_strings[-1] in printed


def test_the_module_runs_as_a_program():
    done = explorer("--help")
    assert done.returncode == 0 and "usage: explorer" in done.stdout


def test_data_info_prints_class_counts(mnist_test, capsys):
    assert cli.main(["data", "info"]) == 0
    assert "980 1135 1032 1010 982 892 958 1028 974 1009" in capsys.readouterr().out


def test_attack_writes_both_digits_and_predictions(tmp_path, mnist_test, capsys):
    out = tmp_path / "adv.png"
    assert cli.main(["attack", "--model", "softmax", "--attack", "pgd", "--eps", "0.3", "--index", "7",
                     "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "clean        predicted 9" in printed and "adversarial  predicted" in printed
    assert Image.open(out).size[0] >= 3 * 28 * 8


def test_gallery_writes_the_four_attacks_on_one_digit_of_each_class(tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert cli.main(["gallery", "--model", "triplet", "--eps", "0.3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    # the triplet model gives up every digit to the iterative attacks, as the app's gallery shows
    for kind in ("bim", "mim", "pgd"):
        assert f"{kind:5s} fooled 10 of 10" in printed
    width, height = Image.open(out).size
    assert width >= 10 * 28 * gallery.SCALE and height >= 4 * 28 * gallery.SCALE


def test_bad_arguments_exit_2_with_one_line():
    for args, reason in [(["attack", "--model", "nope"], "no such checkpoint"),
                         (["attack", "--eps", "-0.1"], "eps must lie in [0, 1]"),
                         (["attack", "--eps", "1.5"], "eps must lie in [0, 1]"),
                         (["attack", "--restarts", "0"], "restarts must be at least 1"),
                         (["attack", "--steps", "0"], "steps must be at least 1"),
                         (["attack", "--index", "10000"], "--index must be in 0..9999"),
                         (["attack", "--attack", "cw"], "invalid choice"),
                         (["gallery", "--model", "nope"], "no such checkpoint"),
                         (["gallery", "--count", "0"], "count must be in 1..2000"),
                         (["gallery", "--eps", "-1"], "eps must lie in [0, 1]"),
                         (["figure2", "--models", "nope"], "no such checkpoint"),
                         (["figure2", "--attack", "cw"], "invalid choice"),
                         (["train", "dropout"], "invalid choice"),
                         (["evaluate", "--table1", "--models", "nope"], "not a Table 1 model: nope"),
                         (["evaluate", "--sweeps", "--runs", "/etc/passwd"], "pass --runs a folder you can write"),
                         (["evaluate", "--table1", "--adopt-batches", "cuda/2.11.0"], "is for --converged alone"),
                         (["evaluate", "--converged", "--adopt-batches", "h200"], "takes DEVICE/TORCH_VERSION")]:
        done = explorer(*args)
        assert done.returncode == 2, args
        assert reason in done.stderr and "Traceback" not in done.stderr


def test_an_interrupted_evaluation_says_how_to_go_on(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(reports, "write_sweeps", interrupted)
    monkeypatch.setattr(runtime, "keep_freed_memory", lambda: False)  # keep the test process's own allocator
    with pytest.raises(SystemExit) as stopped:
        cli.main(["evaluate", "--sweeps", "--runs", str(tmp_path)])
    assert stopped.value.code == 130
    assert f"kept in {tmp_path}/evaluate: run the same command again" in capsys.readouterr().err
