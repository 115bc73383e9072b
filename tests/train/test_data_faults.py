"""Bad data during training: counted and reported, never a crash; ``on_bad_image=error`` stops.

Each test trains on a generated image folder with faults mixed in: truncated, zero-byte
and fake image files, unusual colour modes, files deleted or damaged while training.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from resmo.cli import main
from resmo.config import load_config
from resmo.train.pretrain import execute_run, prepare_run
from resmo.train.stopping import RunStopped
from tests.pretrain_helpers import TINY_HEADS

MODES = ("RGB", "L", "RGBA", "P", "CMYK", "I;16")


def image_folder(root, count, *, bad=()):
    """``count`` small images in many colour modes, plus the ``bad`` kinds of broken file."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        mode = MODES[index % len(MODES)]
        pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        image = Image.fromarray(pixels)
        if mode == "I;16":
            image = Image.fromarray(pixels[..., 0].astype(np.uint16) * 257)
        elif mode != "RGB":
            image = image.convert(mode)
        suffix = "jpg" if mode == "CMYK" else "png"
        image.save(root / f"{index:04d}_{mode.replace(';', '')}.{suffix}")
    (root / "README.txt").write_text("not an image: ignored, not counted")
    paths = []
    for kind in bad:
        path = root / f"bad_{kind}.{'jpg' if kind == 'truncated' else 'png'}"
        if kind == "truncated":
            buffer = root / "full.jpg"
            Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer, quality=95)
            path.write_bytes(buffer.read_bytes()[:600])
            buffer.unlink()
        elif kind == "empty":
            path.write_bytes(b"")
        elif kind == "text":
            path.write_text("plain text with an image name")
        paths.append(path)
    return root, paths


def overrides(data, out, *extra):
    return [
        f"data.name={data}", f"out={out}", "data.image_size=16", "data.num_workers=0",
        "method=mocov3", f"method_options.mocov3={TINY_HEADS['mocov3']}",
        "backbone_options.resnet_small={width: 8}", "train.epochs=2", "train.batch_size=32",
        "train.progress_bar=false", "train.log_every_n_steps=1", "optimizer.warmup_epochs=0",
        *extra,
    ]


def train(data, out, *extra, resume=None, callbacks=()):
    run = prepare_run(load_config(None, overrides(data, out, *extra)), resume=resume)
    run.loop.hooks.extend(callbacks)
    return run, execute_run(run)


def test_one_percent_corrupt_images_train_to_the_end_and_are_counted(tmp_path):
    data, bad = image_folder(tmp_path / "images", 297, bad=("truncated", "empty", "text"))
    out = tmp_path / "run"
    with pytest.warns(UserWarning, match=r"skipped 3 unreadable images \(e\.g\. .*\) so far \(epoch 1\)"):
        run, summary = train(data, out)
    assert run.loop.step == 2 * (300 // 32)
    assert summary["skipped_files"] == 3
    assert set(summary["skipped_examples"]) == {str(path) for path in bad}
    assert summary["final_loss"] is not None and np.isfinite(summary["final_loss"])
    with open(out / "metrics.csv") as file:
        counts = [row["data/skipped_images"] for row in csv.DictReader(file)
                  if row.get("data/skipped_images")]
    assert [float(c) for c in counts] == [3.0, 3.0]


def test_files_that_change_during_the_run_are_counted(tmp_path):
    data, _ = image_folder(tmp_path / "images", 192)
    files = sorted(data.glob("*.png"))

    class ChangeFolder:
        def on_epoch_end(self, loop):
            if loop.epoch == 1:  # before epoch 2
                files[0].unlink()                          # deleted
                files[1].write_bytes(b"\x89PNG garbage")   # replaced by a broken file
                files[2].write_bytes(files[2].read_bytes()[:40])  # truncated in place
                Image.new("RGB", (16, 16)).save(data / "new.png")  # added: not in this run

    run, summary = train(data, tmp_path / "run", callbacks=[ChangeFolder()])
    assert run.loop.step == 2 * (192 // 32)
    assert summary["skipped_files"] == 3


@pytest.mark.parametrize("workers", [0, pytest.param(2, marks=pytest.mark.slow)])  # 2: worker processes
def test_on_bad_image_error_stops_with_one_line_naming_the_file(tmp_path, capsys, workers):
    """With workers the error comes from another process: checked through the real command
    (in-process, torch's clean-up of the failed workers would wait 5 s each at a later GC)."""
    data, (bad,) = image_folder(tmp_path / "images", 63, bad=("truncated",))
    args = ["pretrain", *overrides(data, tmp_path / "run", "data.on_bad_image=error",
                                   f"data.num_workers={workers}")]
    if workers:
        result = subprocess.run([sys.executable, "-m", "resmo.cli", *args], capture_output=True,
                                text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
        code, err = result.returncode, result.stderr
    else:
        code, err = main(args), capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("resmo")]
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("resmo pretrain: error: unreadable image ")
    assert str(bad) in lines[0] and "data.on_bad_image=skip" in lines[0]
    assert "Traceback" not in lines[0]


def test_invalid_on_bad_image_setting(tmp_path, capsys):
    code = main(["pretrain", "data.on_bad_image=ignore", f"out={tmp_path / 'run'}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "data.on_bad_image='ignore'" in err and "error, skip" in err


@pytest.mark.slow  # ~4 s: a run and its resume
def test_skipped_files_are_remembered_across_a_resume(tmp_path):
    data, _ = image_folder(tmp_path / "images", 190, bad=("empty", "text"))
    _, straight = train(data, tmp_path / "straight")

    class SignalAt:
        def on_batch_start(self, loop):
            if loop.step == 8:
                os.kill(os.getpid(), signal.SIGTERM)

    out = tmp_path / "run"
    with pytest.raises(RunStopped):
        train(data, out, callbacks=[SignalAt()])
    resumed_run, resumed = train(data, out, resume="auto")
    assert resumed["skipped_files"] == straight["skipped_files"] == 2
    assert resumed["final_loss"] == straight["final_loss"]
    saved = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
    assert len(saved["loop"]["bad_images"]["paths"]) == 2
