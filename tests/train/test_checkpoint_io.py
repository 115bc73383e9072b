"""Atomic checkpoint writes and the choice of checkpoint for ``--resume``.

The SIGKILL tests fork a process that writes a checkpoint with
:func:`write_checkpoint` and kills itself (SIGKILL, no clean-up possible) at one
stage of the write; the parent then checks what is left on disk.
"""

from __future__ import annotations

import multiprocessing
import os
import signal

import pytest
import torch

from resmo import files as checkpoint_io
from resmo.files import (
    atomic_torch_save,
    previous_path,
    remove_stale_temporaries,
    write_checkpoint,
)
from resmo.train.resume import (
    CHECKPOINT_FORMAT,
    find_resume_checkpoint,
    inspect_checkpoint,
    resolve_resume,
)


def checkpoint(step: int) -> dict:
    return {"format": CHECKPOINT_FORMAT, "global_step": step, "epoch": 0,
            "state_dict": {"w": torch.full((256, 256), float(step))}}


def step_of(path) -> int:
    return int(torch.load(path, weights_only=False)["global_step"])


def _die(*_args, **_kwargs):
    os.kill(os.getpid(), signal.SIGKILL)


def _write_and_die(path: str, stage: str) -> None:
    """Child process: save step 2 over step 1, SIGKILL-ed at ``stage``."""
    real_save, real_keep = torch.save, checkpoint_io.keep_previous
    if stage == "mid-write":  # half of the bytes are on disk
        def save(obj, file):
            real_save(obj, file)
            file.flush()
            file.truncate(file.tell() // 2)
            _die()
        torch.save = save
    elif stage == "before-keep-previous":
        checkpoint_io.keep_previous = _die
    elif stage == "before-replace":
        def keep(target):
            real_keep(target)
            _die()
        checkpoint_io.keep_previous = keep
    elif stage == "before-folder-fsync":
        checkpoint_io.fsync_folder = _die
    elif stage == "between-renames-without-hard-links":
        def no_link(*_args):
            raise OSError("no hard links on this file system")
        real_replace = os.replace
        calls = []

        def replace(source, target):
            real_replace(source, target)
            calls.append(target)
            if len(calls) == 1:  # last.ckpt -> last-prev.ckpt done, new file not yet in place
                _die()
        os.link, os.replace = no_link, replace
    write_checkpoint(checkpoint(2), path)
    os._exit(0)


STAGES = {  # stage -> global step that last.ckpt holds afterwards (None: absent)
    "mid-write": 1,
    "before-keep-previous": 1,
    "before-replace": 1,
    "before-folder-fsync": 2,
    "between-renames-without-hard-links": None,
}


@pytest.mark.parametrize("stage", list(STAGES))
def test_sigkill_during_a_checkpoint_write_leaves_a_loadable_checkpoint(tmp_path, stage):
    folder = tmp_path / "checkpoints"
    last = folder / "last.ckpt"
    write_checkpoint(checkpoint(1), last)
    child = multiprocessing.get_context("fork").Process(target=_write_and_die, args=(str(last), stage))
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    expected = STAGES[stage]
    if expected is None:
        assert not last.exists() and step_of(previous_path(last)) == 1
    else:
        assert step_of(last) == expected  # complete: the old or the new content, never a mix
    best, notes = find_resume_checkpoint(tmp_path)
    assert best is not None and best.global_step in (1, 2), notes
    assert step_of(best.path) == best.global_step
    assert not any("skipping" in note for note in notes), notes  # temporaries are not candidates
    # the next save cleans up the dead writer's temporary file
    write_checkpoint(checkpoint(3), last)
    assert step_of(last) == 3
    assert sorted(p.name for p in folder.iterdir()) == ["last-prev.ckpt", "last.ckpt"]


def test_save_keeps_the_previous_version(tmp_path):
    path = tmp_path / "last.ckpt"
    for step in (1, 2, 3):
        atomic_torch_save(checkpoint(step), path)
    assert step_of(path) == 3 and step_of(previous_path(path)) == 2
    assert previous_path(path).name == "last-prev.ckpt"


def test_stale_temporaries_of_live_processes_are_kept(tmp_path):
    dead = tmp_path / ".last.ckpt.999999999.tmp"
    live = tmp_path / f".last.ckpt.{os.getppid()}.tmp"
    dead.write_bytes(b"partial")
    live.write_bytes(b"partial")
    assert remove_stale_temporaries(tmp_path) == [dead]
    assert live.exists() and not dead.exists()


def test_resume_auto_takes_the_newest_checkpoint_that_loads(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    assert resolve_resume("auto", tmp_path)[0] is None  # nothing yet: start from scratch
    assert "starting from scratch" in resolve_resume("auto", tmp_path)[1][0]
    atomic_torch_save(checkpoint(6), folder / "last.ckpt")
    atomic_torch_save(checkpoint(9), folder / "last.ckpt")
    atomic_torch_save(checkpoint(4), folder / "hpc_ckpt_1.ckpt")
    info, notes = resolve_resume("auto", tmp_path)
    assert info.path == folder / "last.ckpt" and notes[-1].endswith("after 9 steps")
    assert int(info.state["state_dict"]["w"][0, 0]) == 9  # read once: the contents travel with it
    # a damaged newest file is passed over with a note; the kept previous one is used
    data = (folder / "last.ckpt").read_bytes()
    (folder / "last.ckpt").write_bytes(data[: len(data) // 3])
    info, notes = resolve_resume("auto", tmp_path)
    assert info.path == folder / "last-prev.ckpt"
    assert any("last.ckpt" in note and "cannot be loaded" in note for note in notes)
    (folder / "empty.ckpt").write_bytes(b"")
    (folder / "text.ckpt").write_text("not a checkpoint")
    assert resolve_resume("auto", tmp_path)[0].path == folder / "last-prev.ckpt"


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", None])
def test_resume_from_an_unreadable_file_is_a_one_line_error(tmp_path, content):
    path = tmp_path / "bad.ckpt"
    if content is None:
        torch.save({"weights": torch.zeros(2)}, path)  # loads, but is no training checkpoint
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError) as error:
        resolve_resume(str(path), tmp_path)
    assert "bad.ckpt" in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(ValueError):
        inspect_checkpoint(path)
