"""Property-based fuzzing of ``resmo`` and the recipe loader (hypothesis).

Properties:

- any ``key=value`` override, any parsed-YAML mapping: ``load_config`` either returns a
  config or raises ``ConfigError`` with a one-line message (never another exception);
- any ``resmo pretrain`` argument list, any recipe file (text, YAML, bytes) and any
  top-level argument list: exit code 0, or exit code 2 with exactly one line on stderr
  (no traceback).

Valid inputs go through all of ``prepare_run`` (the same checks as a real run) but not
training: ``execute_run`` is replaced by a stub. Torchvision datasets (downloads) and
existing folders (scans) are replaced by a ``DataError``; everything runs in a temporary
working directory. Runs of several processes are never drawn (``ONE_PROCESS``). 100 examples
per property, in-process, derandomized: every run with the same hypothesis release draws the
same examples (pyproject.toml bounds the release). ``RESMO_FUZZ_EXAMPLES`` sets more, with a
random seed.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import os
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import resmo.train.pretrain as pretrain
from resmo.backbones import BACKBONES, backbone_names
from resmo.cli import FLAG_KEYS, main
from resmo.config import ConfigError, PretrainConfig, load_config
from resmo.config.loader import apply_mapping
from resmo.data.build import synthetic_option_names
from resmo.data.errors import DataError
from resmo.data.view_spec import multi_crop_spec, two_view_spec
from resmo.launch import expected_world_size
from resmo.methods import method_names, method_options

# RESMO_FUZZ_EXAMPLES=2000 for a deeper, randomised search (default: 100, reproducible: the
# examples derive from the test's source, not from a seed or from failures saved in a database)
EXAMPLES = int(os.environ.get("RESMO_FUZZ_EXAMPLES", "100"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 100, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def schema_keys(cls=PretrainConfig, prefix="") -> list[str]:
    """Every dotted key of the recipe schema (sections expanded)."""
    keys = []
    for name, field in cls.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            keys += schema_keys(field.annotation, f"{prefix}{name}.")
        else:
            keys.append(prefix + name)
    return keys


def option_keys() -> list[str]:
    """Every free-form option: per method, per backbone, per view recipe, synthetic data."""
    keys = [f"method_options.{m}.{o}" for m in method_names() for o in method_options(m)]
    keys += [f"backbone_options.{b}.{o}" for b in backbone_names()
             for o in inspect.signature(BACKBONES.get(b)).parameters]
    for recipe in (two_view_spec, multi_crop_spec):
        keys += [f"data.views.{o}" for o in inspect.signature(recipe).parameters if o != "image_size"]
    return keys + [f"data.synthetic.{o}" for o in synthetic_option_names()]


KEYS = schema_keys() + option_keys() + [
    "method_options.byol", "backbone_options.vit_tiny", "data.synthetic.colours", "resmo", "train",
    "nope", "train.nope", "", ".", "train..epochs", "a.b.c.d",
]
# The keys (and their flags) that set how many processes a run has. More than one is a real
# multi-process run, which the fuzz must never draw: `--devices 2` launches copies of the running
# command (here, the test session) and `--num-nodes 2` waits for the other nodes' processes, which
# never come. Those runs have their own tests (tests/train/test_ddp.py, tests/distributed/). Here
# these keys get only values that make one process or that are refused before
# anything launches ("auto" is left out: on a machine with several GPUs it means all of them).
PROCESS_KEYS = {"train.devices": "--devices", "train.num_nodes": "--num-nodes"}
ONE_PROCESS = st.sampled_from(["1", "0", "-1", "-3", "1.5", "x", "", "null", "[1]", "{}"])
RUN_KEYS = [key for key in KEYS if key not in PROCESS_KEYS]
# small numbers only: a valid recipe is built (not trained), so sizes must stay cheap
NUMBERS = st.one_of(st.integers(-3, 64), st.floats(-2, 70, allow_nan=False),
                    st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e-9, 0.5, 2**31]))
SCALARS = st.one_of(NUMBERS, st.booleans(), st.none(), st.text(max_size=12),
                    st.sampled_from(["auto", "cpu", "mocov2", "dino", "resnet18", "skip", "error",
                                     "bf16-mixed", "16-mixed", "ddp", "gpu", "synthetic", "cifar10",
                                     "output", "projection", "kd", "lars", "batched"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=6)
RAW_VALUES = st.one_of(
    VALUES.map(lambda v: yaml.safe_dump(v, default_flow_style=True).removesuffix("\n...\n").strip()),
    st.text(max_size=20),
    st.sampled_from(["[", "{", "}", ":", "- a", "'", '"', "&a [*a]", "!!python/object:os.system",
                     "!!binary x", "%YAML 9", "1e-3", ".inf", "~", "0x1f", "1_000", "\t", "a\nb"]),
)


def safe_out(value: str) -> bool:
    return not value.startswith(("/", "~", "\\")) and ".." not in value and "\x00" not in value


# values a valid recipe could hold, so that many examples get through to prepare_run; the
# first value of each key makes a run that starts (test_every_valid_key_reaches_the_run)
VALID = {
    "method": ["mocov2", "mocov3", "byol", "dino"], "backbone": ["resnet_small", "vit_tiny"],
    "resmo.level": ["output", "projection", "features"], "resmo.distance": ["cosine", "mse", "kd"],
    "resmo.weight": ["0", "0.5", "1"], "optimizer.name": ["sgd", "lars", "adamw"],
    "train.precision": ["32-true", "bf16-mixed"], "data.on_bad_image": ["skip", "error"],
    "train.max_bad_steps": ["0", "3"], "data.image_size": ["16", "24", "32"],
    "method_options.mocov3.hidden_dim": ["8", "16"], "data.views.num_local_crops": ["0", "2"],
    "data.views.min_scale": ["0.2", "1.5"], "data.views.flip_prob": ["0.5", "2"],
    "data.pipeline": ["torchvision", "batched"], "monitor.knn_k": ["1", "5"],
}
VALID_OVERRIDES = st.sampled_from(sorted(VALID)).flatmap(
    lambda key: st.sampled_from(VALID[key]).map(lambda value: f"{key}={value}"))
OVERRIDES = st.one_of(
    VALID_OVERRIDES,
    st.builds(lambda key, value: f"{key}={value}", st.sampled_from(RUN_KEYS), RAW_VALUES),
    st.builds(lambda key, value: f"{key}={value}", st.sampled_from(sorted(PROCESS_KEYS)), ONE_PROCESS),
).filter(lambda o: not o.startswith("out=") or safe_out(o[4:]))
FLAGS = [f"--{flag.replace('_', '-')}" for flag in FLAG_KEYS
         if flag != "out" and f"--{flag.replace('_', '-')}" not in PROCESS_KEYS.values()]
FLAG_VALUES = st.one_of(st.integers(-3, 64).map(str), st.text(max_size=10), RAW_VALUES,
                        st.sampled_from(["auto", "0", "1", "2", "mocov2", "resnet_small"]))
TOKENS = st.one_of(
    OVERRIDES,
    st.tuples(st.sampled_from(FLAGS), FLAG_VALUES).map(list),
    st.tuples(st.sampled_from(sorted(PROCESS_KEYS.values())), ONE_PROCESS).map(list),
    st.sampled_from(["--resume", "--config", "--out", "--help-me", "-x", "--", "--epochs=1",
                     "--resume=auto", "=", "==", "key=", "=value"]),
    st.text(max_size=10),
)

TINY = ["data.synthetic.num_samples=64", "data.synthetic.val_num_samples=32", "train.batch_size=16",
        "monitor.knn_max_train=32", "monitor.knn_max_val=16"]


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A working directory, no training, no downloads, no folder scans."""
    monkeypatch.chdir(tmp_path)
    real_build = pretrain.build_datasets

    def build(data, **kwargs):
        name = str(data).strip().lower() if isinstance(data, str) else data
        if name in ("cifar10", "cifar100", "stl10"):
            raise DataError(f"{name}: no downloads while fuzzing")
        if isinstance(data, str) and name != "synthetic" and Path(data).expanduser().exists():
            raise DataError(f"'{data}': no folder scans while fuzzing")
        return real_build(data, **kwargs)

    summary = {"wall_seconds": 0.0, "knn_top1_student": None, "knn_top1_teacher": None,
               "knn_top1_random_init": None}
    real_build_fabric = pretrain.build_fabric

    def build_fabric(config):  # a drawn multi-process run fails here instead of hanging
        assert expected_world_size(config) == 1, f"a run of {expected_world_size(config)} processes was drawn"
        return real_build_fabric(config)

    monkeypatch.setattr(pretrain, "build_datasets", build)
    monkeypatch.setattr(pretrain, "build_fabric", build_fabric)
    monkeypatch.setattr(pretrain, "execute_run", lambda run: summary)
    return tmp_path


def run_cli(argv) -> tuple[int, str]:
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(list(argv))
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
    return code, err.getvalue()


def assert_clean(code: int, err: str, argv) -> None:
    assert code in (0, 2), (code, argv, err)
    if code == 2:
        lines = [line for line in err.splitlines() if line.strip()]
        assert len(lines) == 1, (argv, err)
        assert lines[0].startswith("resmo"), (argv, err)
        assert "Traceback" not in err, (argv, err)


def one_line_config_error(call) -> None:
    try:
        call()
    except ConfigError as error:
        message = str(error)
        assert message and "\n" not in message.strip(), message


@FUZZ
@given(override=st.one_of(  # loaded, not run: the process keys may take any value
    OVERRIDES, st.text(max_size=30),
    st.builds(lambda key, value: f"{key}={value}", st.sampled_from(sorted(PROCESS_KEYS)), RAW_VALUES)))
def test_any_override_loads_or_is_a_config_error(override):
    one_line_config_error(lambda: load_config(None, [override]))


@FUZZ
@given(data=st.dictionaries(st.sampled_from([k.split(".")[0] for k in KEYS] + ["x"]), VALUES, max_size=4))
def test_any_mapping_loads_or_is_a_config_error(data):
    one_line_config_error(lambda: apply_mapping(PretrainConfig(), data, source="recipe.yaml"))


@FUZZ
@given(tokens=st.lists(TOKENS, max_size=5))
def test_pretrain_arguments_exit_0_or_one_line_and_2(sandbox, tokens):
    argv = ["pretrain", *TINY]
    for token in tokens:
        argv += token if isinstance(token, list) else [token]
    code, err = run_cli(argv)
    assert_clean(code, err, argv)


RECIPES = st.one_of(
    st.dictionaries(st.sampled_from(sorted({k.split(".")[0] for k in KEYS})), VALUES, max_size=4).map(
        lambda d: yaml.safe_dump(d, allow_unicode=True)),
    st.text(max_size=80),
    st.binary(max_size=80),
    st.sampled_from(["", "---\n", "- 1\n- 2\n", "train: [\n", "train:\n  epochs: 1\n  epochs: 2\n",
                     "\ufeffmethod: byol\n", "method: !!python/name:os.system\n", "a: &x [*x]\n"]),
)


@FUZZ
@given(recipe=RECIPES)
def test_recipe_files_exit_0_or_one_line_and_2(sandbox, recipe):
    path = sandbox / "recipe.yaml"
    if isinstance(recipe, bytes):
        path.write_bytes(recipe)
    else:
        path.write_text(recipe, encoding="utf-8")
    argv = ["pretrain", "--config", str(path), *TINY]
    code, err = run_cli(argv)
    assert_clean(code, err, recipe)


@FUZZ
@given(argv=st.lists(st.one_of(st.text(max_size=10), st.sampled_from(
    ["pretrain", "eval", "knn", "linear", "gap", "report", "export", "--encoder", "student",
     "--version", "--data", "--device", "cuda:7", "--batch-size", "0", "missing-run"])), max_size=5))
def test_any_command_line_exits_0_or_one_line_and_2(sandbox, argv):
    if "--help" in argv or "-h" in argv:
        argv = [a for a in argv if a not in ("--help", "-h")]
    if argv[:1] == ["pretrain"]:
        argv = [*argv, *TINY]
    code, err = run_cli(argv)
    assert_clean(code, err, argv)


#: what a key needs beside it to be usable (local crops are a multi-crop view option)
VALID_CONTEXT = {"data.views.num_local_crops": ["method=dino"]}


@pytest.mark.parametrize("key", sorted(VALID))
def test_every_valid_key_reaches_the_run(sandbox, key):
    """The VALID keys are real recipe keys: their first value passes every check."""
    code, err = run_cli(["pretrain", *TINY, *VALID_CONTEXT.get(key, []), f"{key}={VALID[key][0]}"])
    assert code == 0, err
