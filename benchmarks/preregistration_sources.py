"""The benchmarks a pre-registration can govern: where their runs are saved and what they hold.

A pre-registration names one ``benchmark`` (default ``quality``); its :class:`Source` says

- which protocols it has and each protocol's arms (what a hypothesis may compare);
- where the run of ``(protocol, arm, seed)`` is saved under the results folder, always
  ``<results>/<protocol>/runs/<arm>-s<seed>.json``, and whether a saved run was made with the
  protocol's current settings;
- which metrics its records hold (``probes``, ``encoders``, ``measures``);
- its **manipulation check**: two readings of the primary endpoint in the control arm's runs,
  paired by seed, whose difference says whether the benchmark can show the hypothesis' effect
  at all (``ahead`` minus ``behind``).

``quality`` (``benchmarks/quality_cifar10.py``): kNN top-1 at ``k`` or linear top-1 of the
student or teacher on the test or val split; current when the run's ``fingerprint`` is the
protocol's; manipulation check teacher − student (ResMo's premise: a teacher ahead of its
student).

``dense`` (``benchmarks/dense_scenes.py``): the frozen dense probe's ``mIoU`` or
``pixel_accuracy`` of the student on the test scenes (``record["dense"]["student"]``);
current when the run's saved ``budget`` is the protocol's; manipulation check student −
random init (``record["dense"]["random_init"]``, the same architecture drawn with the run's
seed): a benchmark where pretraining does not beat random init cannot show what ResMo adds to
pretraining. Its pretraining runs are ``detection_scenes.py``'s (the same folders, named by
the command), so a seed a committed detection result used is not fresh for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from benchmarks.preregistration_schema import Metric


@dataclass(frozen=True)
class Source:
    """What one benchmark's runs look like to a pre-registration (see the module docstring);
    a subclass per benchmark says where its protocols live."""

    name: str
    default_results: str
    command: str  # what makes a protocol's runs, with {protocol}
    probes: tuple[str, ...]
    encoders: tuple[str, ...]
    splits: tuple[str, ...]
    measures: tuple[str, ...]  # a dense probe's measures; () where the probe names the measure
    ahead: str  # the manipulation check: ahead − behind, in the control arm's runs
    behind: str
    #: other results folders whose runs share this benchmark's pretraining runs (a seed they
    #: used is not fresh here either)
    shares_seeds_with: tuple[str, ...] = ()

    def protocols(self) -> dict[str, tuple[str, ...]]:
        """protocol name -> its arms' keys."""
        raise NotImplementedError

    def seeds(self, protocol: str, arm: str) -> tuple[int, ...]:
        """The seeds ``protocol`` runs ``arm`` at."""
        raise NotImplementedError

    def is_current(self, protocol: str, arm: str, seed: int, record: dict) -> bool:
        """Whether ``record`` was made with ``protocol``'s current settings."""
        raise NotImplementedError

    def protocol_metrics(self, protocol: str, metrics: tuple[Metric, ...]) -> tuple[Metric, ...]:
        """``metrics`` as ``protocol``'s runs measure them (a protocol may score another split)."""
        return metrics

    def run_file(self, protocol: str, arm: str, seed: int, results: Path) -> Path:
        return Path(results) / protocol / "runs" / f"{arm}-s{seed}.json"


class QualitySource(Source):
    """``benchmarks/quality_cifar10.py``'s runs (protocols in ``benchmarks/protocol.py``)."""

    def protocols(self) -> dict[str, tuple[str, ...]]:
        from benchmarks.protocol import PROTOCOLS

        return {name: tuple(arm.key for arm in protocol.arms) for name, protocol in PROTOCOLS.items()}

    def seeds(self, protocol: str, arm: str) -> tuple[int, ...]:
        from benchmarks.protocol import PROTOCOLS

        return tuple(PROTOCOLS[protocol].arm(arm).seeds)

    def is_current(self, protocol: str, arm: str, seed: int, record: dict) -> bool:
        from benchmarks.protocol import PROTOCOLS

        return record.get("fingerprint") == PROTOCOLS[protocol].expected_fingerprint(f"{arm}-s{seed}")


class DenseSource(Source):
    """``benchmarks/dense_scenes.py``'s steps (its ``PROTOCOLS``, each with its arms)."""

    def protocols(self) -> dict[str, tuple[str, ...]]:
        from benchmarks.dense_scenes import PROTOCOLS

        return {name: tuple(budget.arms) for name, budget in PROTOCOLS.items()}

    def seeds(self, protocol: str, arm: str) -> tuple[int, ...]:
        from benchmarks.dense_scenes import PROTOCOLS

        return tuple(PROTOCOLS[protocol].seeds)

    def is_current(self, protocol: str, arm: str, seed: int, record: dict) -> bool:
        from benchmarks.dense_scenes import PROTOCOLS, settings

        return record.get("budget") == json.loads(json.dumps(settings(PROTOCOLS[protocol])))

    def protocol_metrics(self, protocol: str, metrics: tuple[Metric, ...]) -> tuple[Metric, ...]:
        """The probe's split is the protocol's (a pilot scores the val scenes, keeping the test ones unread)."""
        from benchmarks.dense_scenes import PROTOCOLS

        return tuple(replace(metric, split=PROTOCOLS[protocol].eval_split) for metric in metrics)


SOURCES: dict[str, Source] = {
    "quality": QualitySource("quality", "benchmarks/results/quality",
                             "python -m benchmarks.quality_cifar10 --protocol {protocol}",
                             probes=("knn", "linear"), encoders=("student", "teacher"), splits=("test", "val"),
                             measures=(), ahead="teacher", behind="student"),
    "dense": DenseSource("dense", "benchmarks/results/dense", "python -m benchmarks.dense_scenes --protocol {protocol}",
                         probes=("dense",), encoders=("student",), splits=("test", "val"),
                         measures=("mIoU", "pixel_accuracy"), ahead="student", behind="random_init",
                         shares_seeds_with=("benchmarks/results/detection",)),
}
