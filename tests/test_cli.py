import subprocess
import sys

import pytest
from PIL import Image

from explorer import allocator, cli, gallery, results


def explorer(*args):
    return subprocess.run([sys.executable, "-m", "explorer.cli", *args], capture_output=True, text=True, timeout=300)


def test_help_lists_the_subcommands():
    done = explorer("--help")
    assert done.returncode == 0
    for command in ("data", "models", "attack", "gallery", "train"):
        assert command in done.stdout


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
                         (["evaluate", "--sweeps", "--runs", "/etc/passwd"], "pass --runs a folder you can write")]:
        done = explorer(*args)
        assert done.returncode == 2, args
        assert reason in done.stderr and "Traceback" not in done.stderr


def test_an_interrupted_evaluation_says_how_to_go_on(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(results, "write_sweeps", interrupted)
    monkeypatch.setattr(allocator, "keep_freed_memory", lambda: False)  # keep the test process's own allocator
    with pytest.raises(SystemExit) as stopped:
        cli.main(["evaluate", "--sweeps", "--runs", str(tmp_path)])
    assert stopped.value.code == 130
    assert f"kept in {tmp_path}/evaluate: run the same command again" in capsys.readouterr().err
