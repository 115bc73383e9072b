"""A pre-registration: what a confirmatory test of ResMo's effect will measure, on which seeds,
and how it will decide, fixed in a YAML file committed before any of its runs.

Pre-registrations live in ``benchmarks/preregistered/<name>.yaml``. Every key below is
required unless marked optional; a wrong key or value stops with one line naming the file and
the key (``PreregistrationError``, a ``ValueError``)::

    name: resmo-short-2026-12        # the analysis writes benchmarks/results/preregistered/<name>.json
    date: 2026-12-08                 # the day it was written (before any of its runs)
    results: benchmarks/results/quality   # optional (this default): the protocols' run caches
    code:                            # what the runs it reads must share
      same_commit: true              # refuse runs made at different commits (false: list them)
      same_threads: true             # refuse runs made with different torch thread counts
      clean: true                    # refuse runs whose code had uncommitted changes
    primary_endpoint: {probe: knn, encoder: student, k: 20, split: test}
    seeds:                           # per protocol (or one list for all): fresh, never used by
      full: [100, 101, 102, 103, 104, 105, 106, 107]   # any committed result
    hypotheses:                      # the family Holm's correction runs over
      - id: H1
        description: MoCo v3 + ResMo (λ=0.3) reaches a different kNN top-1 than plain MoCo v3
        protocol: full               # a protocol of benchmarks/protocol.py
        arm_treatment: mocov3-w0.3   # arms of that protocol, run at every seed above
        arm_control: mocov3-w0
        direction: two-sided         # the test's alternative (only two-sided)
        expects: higher              # the claim: higher, lower or different
      - id: H2
        description: BYOL + ResMo (λ=1) reaches a different kNN top-1 than plain BYOL
        protocol: full
        arm_treatment: byol-w1
        arm_control: byol-w0
        direction: two-sided
        expects: higher
    test: paired-t                   # paired over seeds (benchmarks/paired_statistics.py)
    correction: holm                 # over the hypotheses above
    alpha: 0.05
    decision_rule: >-
      A hypothesis is confirmed when its Holm-adjusted p is below alpha and the mean paired
      difference has the sign it expects; otherwise it is not confirmed.
    minimal_detectable_effect:       # checked: value = TTestPower d(n, alpha, power) · sd (± 0.01)
      value: 1.01
      n: 8
      alpha: 0.025                   # Holm's worst case for a family of 2: 0.05 / 2
      power: 0.8
      sd: 0.7519
      derivation: >-
        sd: SD of the 5 committed full-protocol paired differences of MoCo v3 λ=0.3 vs λ=0
        (python -m benchmarks.preregistration power); d from statsmodels TTestPower.
    secondary_endpoints:             # optional: reported with raw p only, as exploratory
      - {id: knn_k200, metric: {probe: knn, encoder: student, k: 200, split: test}}
      - {id: linear, metric: {probe: linear, encoder: student, split: test}}

A metric of the ``quality`` benchmark is ``probe`` ``knn`` (top-1 at ``k``, which it must name)
or ``linear`` (top-1, no ``k``) of the ``student`` or ``teacher`` encoder on the ``test`` or
``val`` split; a run record holds it at ``record[probe][encoder]["k<k>"]`` (knn) or
``record[probe][encoder]`` (linear), and its ``eval_split`` key (absent: ``test``, the split
every quality run so far evaluates on) must be the metric's split. A metric of the ``dense``
benchmark is ``{probe: dense, encoder: student, measure: mIoU | pixel_accuracy, split: test | val}``,
held at ``record["dense"][encoder][measure]``, and its ``record["dense"]["split"]`` (absent:
``test``) must be the metric's split. A hypothesis may repeat the primary endpoint as
its ``metric``; any other metric is an error (one primary endpoint).

Two optional keys (``preregistration_sources.py`` says what each benchmark offers)::

    benchmark: dense                 # default quality: the runs of quality_cifar10.py
    manipulation_gate: true          # default false: a hypothesis can be confirmed only when the
                                     # manipulation check of its control arm (dense: student minus
                                     # random init; quality: teacher minus student) has a 95 %
                                     # interval above 0

The confirmatory decision is coded in :func:`benchmarks.preregistration_analysis.confirmed`;
``decision_rule`` states it in words.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from benchmarks.paired_statistics import minimal_detectable_effect
from benchmarks.preregistration_sources import SOURCES, Source

ROOT = Path(__file__).resolve().parent.parent
PREREGISTERED = ROOT / "benchmarks" / "preregistered"
OUTPUT = ROOT / "benchmarks" / "results" / "preregistered"
EXPECTS = ("higher", "lower", "different")
#: how far the stated minimal detectable effect may be from its recomputation (rounding)
MDE_TOLERANCE = 0.01


def relative_to_root(path: Path) -> str:
    """``path`` relative to the repository root (as given when it lies outside)."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


class PreregistrationError(ValueError):
    """A pre-registration file that cannot be used, or runs that break it (one line)."""


@dataclass(frozen=True)
class Metric:
    probe: str
    encoder: str
    split: str
    k: int | None = None
    measure: str | None = None  # the dense probe's: mIoU or pixel_accuracy

    @property
    def label(self) -> str:
        if self.measure is not None:
            return f"{self.probe}_{self.measure}_{self.encoder} on {self.split}"
        return f"{self.probe}_top1_{self.encoder}" + (f"_k{self.k}" if self.k else "") + f" on {self.split}"

    def value(self, record: dict) -> float | None:
        """The metric in a run record, ``None`` when the record lacks it."""
        section = record.get(self.probe, {}).get(self.encoder)
        if self.probe == "dense" and record["dense"].get("split", "test") != self.split:
            return None  # a dense probe scored on another split of the scenes
        if self.measure is not None:
            return section.get(self.measure) if isinstance(section, dict) else None
        return section.get(f"k{self.k}") if isinstance(section, dict) else section


@dataclass(frozen=True)
class Hypothesis:
    id: str
    description: str
    protocol: str
    arm_treatment: str
    arm_control: str
    expects: str
    seeds: tuple[int, ...]


@dataclass(frozen=True)
class Secondary:
    id: str
    metric: Metric


@dataclass(frozen=True)
class Preregistration:
    path: Path
    name: str
    date: str
    source: Source
    results: Path
    same_commit: bool
    same_threads: bool
    clean: bool
    primary: Metric
    hypotheses: tuple[Hypothesis, ...]
    alpha: float
    decision_rule: str
    mde: dict
    secondary: tuple[Secondary, ...]
    manipulation_gate: bool = False

    def run_files(self, hypothesis: Hypothesis) -> dict[tuple[str, int], Path]:
        """``(arm, seed) -> result file`` of every run ``hypothesis`` reads, where its benchmark
        saves it: ``<results>/<protocol>/runs/<arm>-s<seed>.json``."""
        return {(arm, seed): self.source.run_file(hypothesis.protocol, arm, seed, self.results)
                for arm in (hypothesis.arm_treatment, hypothesis.arm_control) for seed in hypothesis.seeds}

    def output_file(self) -> Path:
        """Where its analysis is written: ``benchmarks/results/preregistered/<name>.json``."""
        return OUTPUT / f"{self.name}.json"

    def seeds_by_protocol(self) -> dict[str, set[int]]:
        seeds: dict[str, set[int]] = {}
        for hypothesis in self.hypotheses:
            seeds.setdefault(hypothesis.protocol, set()).update(hypothesis.seeds)
        return seeds


def load(path: Path | str) -> Preregistration:
    """Read and validate the pre-registration at ``path`` (see the module docstring)."""
    import yaml

    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise PreregistrationError(f"{path}: cannot read it as YAML ({str(error).splitlines()[0]})") from None
    return _Reader(path).preregistration(raw)


class _Reader:
    """Validation of one file: every error names ``path`` and the key."""

    def __init__(self, path: Path):
        self.path = path
        self.source = SOURCES["quality"]

    def fail(self, key: str, message: str):
        raise PreregistrationError(f"{self.path}: {key}: {message}")

    def get(self, mapping: dict, key: str, where: str, kind: type | tuple, default=...):
        name = f"{where}.{key}" if where else key
        if key not in mapping:
            if default is ...:
                self.fail(name, "missing")
            return default
        value = mapping[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _tuple(kind)):
            self.fail(name, f"{value!r} is not {_kind_name(kind)}")
        return value

    def text(self, mapping: dict, key: str, where: str = "") -> str:
        value = self.get(mapping, key, where, str).strip()
        if not value:
            self.fail(f"{where}.{key}" if where else key, "is empty")
        return value

    def choice(self, mapping: dict, key: str, where: str, choices: tuple[str, ...]) -> str:
        value = self.get(mapping, key, where, str)
        if value not in choices:
            self.fail(f"{where}.{key}" if where else key, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def unknown(self, mapping: dict, where: str, known: tuple[str, ...]) -> None:
        extra = sorted(set(mapping) - set(known))
        if extra:
            self.fail(f"{where}.{extra[0]}" if where else str(extra[0]), f"unknown key (known: {', '.join(known)})")

    def preregistration(self, raw) -> Preregistration:
        if not isinstance(raw, dict):
            self.fail("(top level)", "is not a mapping of keys")
        known = ("name", "date", "benchmark", "results", "code", "primary_endpoint", "seeds", "hypotheses", "test",
                 "correction", "alpha", "decision_rule", "minimal_detectable_effect", "secondary_endpoints",
                 "manipulation_gate")
        self.unknown(raw, "", known)
        if "benchmark" in raw:
            self.source = SOURCES[self.choice(raw, "benchmark", "", tuple(SOURCES))]
        name = self.text(raw, "name")
        if "/" in name or name.startswith("."):
            self.fail("name", f"{name!r} must be a plain file name")
        date = self.get(raw, "date", "", (str, datetime.date))
        if isinstance(date, str):
            try:
                datetime.date.fromisoformat(date)
            except ValueError:
                self.fail("date", f"{date!r} is not a YYYY-MM-DD date")
        code = self.get(raw, "code", "", dict)
        self.unknown(code, "code", ("same_commit", "same_threads", "clean"))
        primary = self.metric(self.get(raw, "primary_endpoint", "", dict), "primary_endpoint")
        if self.get(raw, "test", "", str) != "paired-t":
            self.fail("test", f"{raw['test']!r} is not paired-t (the only test analysed)")
        if self.get(raw, "correction", "", str) != "holm":
            self.fail("correction", f"{raw['correction']!r} is not holm (the only correction applied)")
        alpha = self.get(raw, "alpha", "", (int, float))
        if not 0 < alpha < 1:
            self.fail("alpha", f"{alpha} is not in (0, 1)")
        hypotheses = self.hypotheses(raw, primary)
        secondary = tuple(self.secondary(item, f"secondary_endpoints[{i}]")
                          for i, item in enumerate(self.get(raw, "secondary_endpoints", "", list, [])))
        ids = [s.id for s in secondary]
        if len(set(ids)) != len(ids):
            self.fail("secondary_endpoints", f"ids repeat: {ids}")
        return Preregistration(
            path=self.path, name=name, date=str(date), source=self.source,
            results=ROOT / (self.text(raw, "results") if "results" in raw else self.source.default_results),
            same_commit=self.get(code, "same_commit", "code", bool), same_threads=self.get(code, "same_threads", "code", bool),
            clean=self.get(code, "clean", "code", bool), primary=primary, hypotheses=hypotheses, alpha=float(alpha),
            decision_rule=self.text(raw, "decision_rule"), mde=self.mde(raw), secondary=secondary,
            manipulation_gate=self.get(raw, "manipulation_gate", "", bool, False),
        )

    def metric(self, raw: dict, where: str) -> Metric:
        source = self.source
        self.unknown(raw, where, ("probe", "encoder", "k", "split", *(("measure",) if source.measures else ())))
        probe = self.choice(raw, "probe", where, source.probes)
        k = self.get(raw, "k", where, int, None)
        if probe == "knn" and (k is None or k < 1):
            self.fail(f"{where}.k", "a kNN metric needs k, a positive integer (e.g. 20)")
        if probe != "knn" and k is not None:
            self.fail(f"{where}.k", f"a {probe} probe has no k")
        measure = self.choice(raw, "measure", where, source.measures) if source.measures else None
        return Metric(probe, self.choice(raw, "encoder", where, source.encoders),
                      self.choice(raw, "split", where, source.splits), k, measure)

    def seeds(self, raw: dict, protocol: str, where: str) -> tuple[int, ...]:
        seeds = self.get(raw, "seeds", "", (list, dict))
        key = "seeds"
        if isinstance(seeds, dict):
            if protocol not in seeds:
                self.fail(f"seeds.{protocol}", f"missing: {where} runs protocol {protocol!r}")
            seeds, key = seeds[protocol], f"seeds.{protocol}"
        if not isinstance(seeds, list) or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
            self.fail(key, f"{seeds!r} is not a list of non-negative integers")
        if len(set(seeds)) != len(seeds) or len(seeds) < 2:
            self.fail(key, f"{seeds!r} must hold at least two different seeds, none repeated")
        return tuple(seeds)

    def hypotheses(self, raw: dict, primary: Metric) -> tuple[Hypothesis, ...]:
        items = self.get(raw, "hypotheses", "", list)
        if not items:
            self.fail("hypotheses", "is empty")
        hypotheses = []
        for i, item in enumerate(items):
            where = f"hypotheses[{i}]"
            if not isinstance(item, dict):
                self.fail(where, "is not a mapping")
            self.unknown(item, where, ("id", "description", "protocol", "arm_treatment", "arm_control",
                                       "direction", "expects", "metric"))
            protocols = self.source.protocols()
            protocol = self.choice(item, "protocol", where, tuple(sorted(protocols)))
            arms = protocols[protocol]
            for side in ("arm_treatment", "arm_control"):
                if self.get(item, side, where, str) not in arms:
                    self.fail(f"{where}.{side}", f"{item[side]!r} is not an arm of protocol {protocol!r} "
                                                 f"({', '.join(arms)})")
            if item["arm_treatment"] == item["arm_control"]:
                self.fail(f"{where}.arm_control", f"is the treatment arm {item['arm_control']!r}")
            if self.get(item, "direction", where, str) != "two-sided":
                self.fail(f"{where}.direction", f"{item['direction']!r} is not two-sided (the only test analysed)")
            if "metric" in item and self.metric(self.get(item, "metric", where, dict), f"{where}.metric") != primary:
                self.fail(f"{where}.metric", "differs from primary_endpoint (one primary endpoint)")
            hypotheses.append(Hypothesis(self.text(item, "id", where), self.text(item, "description", where), protocol,
                                         item["arm_treatment"], item["arm_control"],
                                         self.choice(item, "expects", where, EXPECTS), self.seeds(raw, protocol, where)))
        ids = [h.id for h in hypotheses]
        if len(set(ids)) != len(ids):
            self.fail("hypotheses", f"ids repeat: {ids}")
        return tuple(hypotheses)

    def secondary(self, raw, where: str) -> Secondary:
        if not isinstance(raw, dict):
            self.fail(where, "is not a mapping")
        self.unknown(raw, where, ("id", "description", "metric"))
        return Secondary(self.text(raw, "id", where), self.metric(self.get(raw, "metric", where, dict), f"{where}.metric"))

    def mde(self, raw: dict) -> dict:
        where = "minimal_detectable_effect"
        mde = self.get(raw, where, "", dict)
        self.unknown(mde, where, ("value", "n", "alpha", "power", "sd", "derivation"))
        numbers = {key: float(self.get(mde, key, where, (int, float))) for key in ("value", "alpha", "power", "sd")}
        n = self.get(mde, "n", where, int)
        if n < 2 or not 0 < numbers["alpha"] < 1 or not 0 < numbers["power"] < 1 or numbers["sd"] <= 0:
            self.fail(where, "needs n >= 2, alpha and power in (0, 1) and sd > 0")
        expected = minimal_detectable_effect(numbers["sd"], n, numbers["alpha"], numbers["power"])
        if abs(expected - numbers["value"]) > MDE_TOLERANCE:
            self.fail(f"{where}.value", f"{numbers['value']} does not follow from n={n}, alpha={numbers['alpha']}, "
                                        f"power={numbers['power']}, sd={numbers['sd']}: that gives {expected:.4f}")
        return {**numbers, "n": n, "derivation": self.text(mde, "derivation", where)}


def _tuple(kind) -> tuple:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list",
             dict: "a mapping", datetime.date: "a date"}
    return " or ".join(names.get(k, k.__name__) for k in _tuple(kind))
