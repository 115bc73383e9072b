"""p values of the short protocol's paired ResMo effects, from its ``summary.json``.

The family is every paired comparison the docs report (``checks.resmo_effects``: each ResMo arm
with several seeds against its plain method, on each metric with an interval). Each gets the
two-sided paired t-test of the ResMo arm's per-seed values against the plain arm's, paired by seed
(:func:`benchmarks.paired_statistics.paired_test`), and Holm's step-down adjustment over the whole
family (:func:`benchmarks.paired_statistics.holm`, Holm 1979).
"""

from __future__ import annotations

import math

from benchmarks.paired_statistics import holm, paired_test


def _by_seed(arm: dict, metric: str) -> dict[int, float]:
    values = arm["metrics"][metric]["values"]
    if len(values) != len(arm["seeds"]):
        raise ValueError(f"arm {arm['key']!r}: {len(values)} {metric} values for {len(arm['seeds'])} seeds; "
                         "the per-seed pairing is lost")
    return dict(zip(arm["seeds"], values, strict=True))


def effect_tests(summary: dict) -> dict[tuple[str, str], dict]:
    """``(arm key, metric)`` -> ``{"p", "p_holm", "family"}`` for every paired effect of
    ``summary`` with an interval (two seeds or more), in the order the docs list them."""
    arms = {arm["key"]: arm for arm in summary["arms"]}
    raw: dict[tuple[str, str], float] = {}
    for key, effect in summary["checks"].get("resmo_effects", {}).items():
        for metric, recorded in effect["metrics"].items():
            if recorded.get("ci95") is None:
                continue
            treated, control = _by_seed(arms[key], metric), _by_seed(arms[effect["control"]], metric)
            seeds = [seed for seed in control if seed in treated]  # the control's seed order, as the summary
            test = paired_test([treated[s] for s in seeds], [control[s] for s in seeds])
            if not all(math.isclose(a, b, abs_tol=1e-9) for a, b in zip(test["differences"], recorded["per_seed"],
                                                                          strict=True)):
                raise ValueError(f"{key} {metric}: the arms' values do not give the summary's per-seed differences")
            raw[(key, metric)] = test["p"]
    adjusted = holm(list(raw.values()))
    return {pair: {"p": p, "p_holm": p_holm, "family": len(raw)}
            for (pair, p), p_holm in zip(raw.items(), adjusted, strict=True)}
