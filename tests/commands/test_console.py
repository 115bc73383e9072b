"""The console of ``resmo pretrain``: resmo's lines only, unless ``--verbose``."""

import logging
import os
import subprocess
import sys
import warnings

import pytest

from pretrain_helpers import tiny_overrides
from resmo.console import QUIET_LOGGERS, quiet_third_party


@pytest.fixture
def restore_logger_levels():
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_lightning_warnings_and_deprecations_are_hidden_and_ours_take_one_line(capsys, restore_logger_levels):
    with warnings.catch_warnings():
        quiet_third_party(verbose=False)
        warnings.warn_explicit("Previous log files in this directory will be deleted", UserWarning,
                               "csv_logs.py", 268, module="lightning.fabric.loggers.csv_logs")
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated", DeprecationWarning, stacklevel=1)
        warnings.warn("an old argument", FutureWarning, stacklevel=1)
        warnings.warn("data 'x' has no labelled validation split:\n  kNN monitors are off", UserWarning, stacklevel=1)
    logging.getLogger("lightning.pytorch.utilities.rank_zero").info("GPU available: False, used: False")
    assert capsys.readouterr().err == "# warning: data 'x' has no labelled validation split: kNN monitors are off\n"
    assert logging.getLogger("lightning.pytorch").getEffectiveLevel() == logging.WARNING


def test_verbose_leaves_everything_as_the_libraries_print_it(restore_logger_levels):
    level = logging.getLogger("lightning.pytorch").level
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_third_party(verbose=True)
        warnings.warn_explicit("Previous log files", UserWarning, "csv_logs.py", 268,
                               module="lightning.fabric.loggers.csv_logs")
        warnings.warn("old", DeprecationWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["Previous log files", "old"]
    assert logging.getLogger("lightning.pytorch").level == level


def _pretrain(tmp_path, *extra):
    args = [*tiny_overrides(tmp_path / "run", epochs=1, samples=64), "train.progress_bar=true", *extra]
    return subprocess.run([sys.executable, "-m", "resmo.cli", "pretrain", *args], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})


NOISE = ("GPU available", "TPU available", "Tip:", "Loading `train_dataloader`", "Trainer.fit` stopped",
         "deprecated", "Previous log files", "site-packages", "Warning:")


@pytest.mark.slow  # two `resmo pretrain` processes: ~25 s on 2 CPU cores
def test_a_run_prints_resmo_lines_only(tmp_path):
    done = _pretrain(tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    console = done.stdout + done.stderr
    assert [noise for noise in NOISE if noise in console] == []
    config_file = tmp_path / "run" / "config.yaml"
    assert done.stdout.startswith(f"# the resolved recipe, options of mocov3 and resnet_small only "
                                  f"(all of it: {config_file})\nmethod: mocov3\n")
    assert "method_options:\n  mocov3:\n" in done.stdout and "\n  byol:\n" not in done.stdout
    assert "\n  byol:\n" in config_file.read_text()  # the whole recipe is kept
    assert "\r" not in done.stdout  # piped: plain lines, no bar redrawn in place
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert [line for line in lines if line.startswith("Epoch")] == [lines[-5]]
    assert lines[-5].startswith("Epoch 1/1: 2/2 steps, ")
    assert lines[-4].startswith("done in ") and lines[-3].startswith("intra gap (")
    assert lines[-2].startswith("student ") and lines[-2].count("random init") == 1
    assert lines[-1].startswith(f"next: resmo eval knn {tmp_path / 'run'}; resmo report {tmp_path / 'run'}; ")
    assert done.stderr.splitlines()[0].startswith("# kNN top-1 of the random-init encoder: ")
    verbose = _pretrain(tmp_path, "--verbose")  # the loop on Fabric prints no banner to show
    assert verbose.returncode == 0, verbose.stderr[-2000:]
    verbose_lines = [line for line in verbose.stdout.splitlines() if line.strip()]
    assert verbose_lines[-4].startswith("done in ") and verbose_lines[-1].startswith("next: ")


@pytest.mark.slow  # ~5 s: a run and its resume
def test_a_resumed_run_shows_the_epoch_and_its_total_from_the_batch_it_resumes_at(tmp_path, capsys):
    from resmo.config import load_config
    from resmo.train.pretrain import execute_run, prepare_run
    from resmo.train.stopping import RunStopped
    from tests.pretrain_helpers import SignalAt

    overrides = [*tiny_overrides(tmp_path / "run"), "train.progress_bar=true", "monitor.knn_every_epochs=0"]
    run = prepare_run(load_config(None, overrides))
    run.loop.hooks.append(SignalAt(8))  # batch 3 of 6 in epoch 2
    with pytest.raises(RunStopped):
        execute_run(run)
    capsys.readouterr()
    execute_run(prepare_run(load_config(None, overrides), resume="auto"))
    bars = [line for line in capsys.readouterr().out.splitlines() if line.startswith("Epoch")]
    assert bars == ["Epoch 2/2: 3/6 steps (resumed)", bars[-1]]  # not a terminal: plain lines
    assert bars[-1].startswith("Epoch 2/2: 6/6 steps, loss "), bars
