"""``--resume`` continues the run its folder records, or refuses in one line.

A run folder's ``config.yaml`` (:func:`resmo.train.run_folder.write_config`) holds the
settings its checkpoints were trained with. A resume whose recipe differs in anything that
changes the numbers (method, backbone, options, seed, data, views, optimizer, ResMo term,
batch size, precision, monitor, ...) would train the rest of the run with other settings
and then record those as the whole run's. :func:`check_same_run` compares the two recipes,
flattened to dotted keys (``method_options.mocov3.hidden_dim``), in the recipe's own order,
and raises ``ValueError`` naming the first key that differs, old -> new; the keys of
:data:`CHANGEABLE_ON_RESUME` (how and where the run trains, not what) may differ.
:func:`check_recorded_settings` reads ``<out>/config.yaml`` for it, before any process
is launched and without writing anything.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from resmo.config.loader import config_to_dict
from resmo.config.schema import PretrainConfig
from resmo.validation import one_line

CHANGEABLE_ON_RESUME: dict[str, str] = {
    "train.epochs": "extends (or shortens) the run: the learning-rate schedule is recomputed "
                    "for the new total from the step reached",
    "train.accelerator": "the run may move to other hardware; the weights and the data order "
                         "do not depend on it",
    "train.devices": "the number of processes may change (a smaller or larger allocation); the run "
                     "continues from the same step with another data order (docs/reliability.md, Limits)",
    "train.num_nodes": "as train.devices",
    "train.strategy": "how the processes are combined (auto: one process or DDP; ddp), not what they compute",
    "train.rendezvous_timeout": "how long processes wait for each other at the start",
    "train.progress_bar": "what the terminal shows",
    "train.log_every_n_steps": "how often metrics.csv gets a row; the training is the same",
    "train.max_bad_steps": "a stop on a non-finite step asks for it to be raised and the run continued "
                           "(a skipped step changes nothing)",
    "train.max_scaler_skips_in_a_row": "as train.max_bad_steps, for the fp16 gradient scaler's skips",
    "data.num_workers": "the views of each image are drawn from its own seed, the same for any "
                        "number of workers (resmo.data.sampling)",
    "data.cache_dir": "where a downloaded dataset is kept; the images are the same",
    "out": "the run folder may be named another way (relative or absolute path, or the default)",
}
"""The recipe keys whose value may differ between a run's ``config.yaml`` and the command
that resumes it, each with the reason it may: they say how, where, for how long and how
verbosely the run trains, not what it computes. Every other key is refused."""

UNDECIDED: dict[str, Any] = {"data.image_size": None, "data.pipeline": "auto"}
"""Keys whose value (here) asks resmo to decide when the run starts; ``config.yaml`` records
the decision (the dataset's image side, the pipeline chosen for the device). A command
that leaves such a key undecided agrees with any recorded value; a command that names a
value must name the recorded one."""

_MISSING = object()


def recorded_config(out: str | os.PathLike) -> tuple[dict[str, Any] | None, Path]:
    """The settings in ``<out>/config.yaml`` (``None`` when the folder has none) and its path;
    ``ValueError`` (one line) for a file that is not a YAML mapping."""
    path = Path(out) / "config.yaml"
    if not path.is_file():
        return None, path
    try:
        recorded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        reason = " ".join(str(error).split())[:160]
        raise ValueError(f"--resume: {path} cannot be read ({reason}); restore it, or delete it to "
                         "resume without comparing the settings") from None
    if not isinstance(recorded, dict):
        raise ValueError(f"--resume: {path} does not hold a recipe (a mapping of keys); restore it, or "
                         "delete it to resume without comparing the settings")
    return recorded, path


def check_recorded_settings(out: str | os.PathLike, new: dict[str, Any]) -> list[str]:
    """Check that ``new`` (this command's recipe as a plain dict) continues the run recorded
    in ``<out>/config.yaml`` (see :func:`check_same_run`); notes to print: one when the
    folder has no ``config.yaml`` (a run folder from before it was written), which resumes
    unchecked."""
    recorded, path = recorded_config(out)
    if recorded is None:
        return [f"--resume: {path} is missing, so this command's settings cannot be compared with "
                "the run's; continuing with them"]
    check_same_run(recorded, new, source=path, defaults=config_to_dict(PretrainConfig()))
    return []


def check_same_run(recorded: dict[str, Any], new: dict[str, Any], *,
                   source: str | os.PathLike = "config.yaml", defaults: dict[str, Any] | None = None) -> None:
    """Raise ``ValueError`` (one line) unless the recipe ``new`` continues the run recorded as
    ``recorded`` (read from ``source``).

    Both are flattened to dotted keys and compared in ``new``'s order (keys only ``recorded``
    has come last in their section); the first key that differs is named with both values:
    ``SOURCE has optimizer.lr=0.02, this command has optimizer.lr=0.05; ...``. A key that one
    side lacks differs. Keys of :data:`CHANGEABLE_ON_RESUME` may differ; a key of
    :data:`UNDECIDED` left undecided by ``new`` (``data.image_size: null``,
    ``data.pipeline: auto``) agrees with the value ``recorded`` holds, which is the one
    decided when the run started. A key ``recorded`` lacks agrees with a ``new`` value equal to
    its value in ``defaults`` (the schema's defaults: a setting added to resmo after the run
    was recorded, left at the default that reproduces the older behaviour).
    """
    default_leaves = dict(_flat(defaults)) if defaults else {}
    for key, old, value in _leaves(recorded, new):
        if _changeable(key) or (old is not _MISSING and key in UNDECIDED and _same(value, UNDECIDED[key])):
            continue
        if old is _MISSING and key in default_leaves and _same(value, default_leaves[key]):
            continue
        if not _same(old, value):
            raise ValueError(one_line(
                f"--resume: {source} has {_shown(key, old)}, this command has {_shown(key, value)}; "
                "resume with the run's settings or start a new run with --out NEW"))


def _leaves(recorded: Any, new: Any, prefix: str = "") -> Iterator[tuple[str, Any, Any]]:
    """``(dotted key, recorded value, new value)`` of every leaf, in ``new``'s order; where
    both sides hold a mapping it is walked into, where one side lacks a key its value is
    ``_MISSING`` (a mapping only one side has is one leaf, named by its key)."""
    if isinstance(recorded, dict) and isinstance(new, dict):
        for name in [*new, *(name for name in recorded if name not in new)]:
            yield from _leaves(recorded.get(name, _MISSING), new.get(name, _MISSING),
                               f"{prefix}.{name}" if prefix else str(name))
    else:
        yield prefix, recorded, new


def _flat(values: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for name, value in values.items():
        key = f"{prefix}.{name}" if prefix else str(name)
        if isinstance(value, dict):
            yield from _flat(value, key)
        else:
            yield key, value


def _changeable(key: str) -> bool:
    return any(key == name or key.startswith(f"{name}.") for name in CHANGEABLE_ON_RESUME)


def _same(a: Any, b: Any) -> bool:
    """Equal as recipe values: ``1 == 1.0``, but ``true`` is not ``1``; NaN equals NaN."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def _shown(key: str, value: Any) -> str:
    """``key=value`` as an override would write it (``optimizer.lr=0.02``, ``data.pipeline=auto``,
    ``optimizer.betas=[0.9, 0.999]``), or ``no key``."""
    if value is _MISSING:
        return f"no {key}"
    text = yaml.safe_dump(value, default_flow_style=True, width=float("inf")).strip()
    text = text.removesuffix("...").strip()
    return f"{key}={text}"
