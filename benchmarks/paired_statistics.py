"""Paired two-sided tests over seeds, Holm's correction and the smallest detectable effect.

For per-seed differences ``d_s = treatment_s - control_s`` (``s`` = 1..n, the same seed in
both arms: same initialisation and data order):

- mean ``d̄``, sample standard deviation ``s_d`` and the 95 % t interval
  ``d̄ ± t_{0.975, n-1} · s_d / sqrt(n)`` (``scipy.stats.t``);
- the paired t-test ``t = d̄ / (s_d / sqrt(n))`` on ``n - 1`` degrees of freedom, two-sided
  (``scipy.stats.ttest_rel``);
- the exact Wilcoxon signed-rank test (``scipy.stats.wilcoxon(method="exact")``), a check
  that does not assume normal differences;
- Holm's step-down correction over a family of ``m`` p values (Holm 1979, "A simple
  sequentially rejective multiple test procedure"): with ``p_(1) <= ... <= p_(m)``,
  ``p_holm_(i) = max_{j <= i} min(1, (m - j + 1) · p_(j))``
  (``statsmodels.stats.multitest.multipletests(method="holm")``);
- the minimal detectable effect of a paired two-sided t-test at level ``alpha`` and power
  ``1 - beta`` with ``n`` pairs: ``δ_min = d_min · s_d``, ``d_min`` the standardized effect
  (Cohen's d of the differences) that ``statsmodels.stats.power.TTestPower.solve_power``
  finds from the noncentral t distribution.
"""

from __future__ import annotations

import math
import statistics
import warnings


def paired_test(treatment: list[float], control: list[float]) -> dict:
    """Mean paired difference, its 95 % t interval, the two-sided paired t-test's p and the
    exact Wilcoxon signed-rank p of ``treatment - control`` (lists in seed order, n >= 2)."""
    from scipy import stats

    if len(treatment) != len(control) or len(treatment) < 2:
        raise ValueError(f"a paired test needs two lists of the same length >= 2, got {len(treatment)} "
                         f"and {len(control)} values")
    differences = [a - b for a, b in zip(treatment, control, strict=True)]
    n = len(differences)
    mean = statistics.fmean(differences)
    sd = statistics.stdev(differences)
    error = sd / math.sqrt(n)
    half = float(stats.t.ppf(0.975, n - 1)) * error
    if sd == 0:  # every seed moved by the same amount: no spread to test against
        p_t, t_value = (1.0 if mean == 0 else 0.0), math.copysign(math.inf, mean) if mean else 0.0
    else:
        result = stats.ttest_rel(treatment, control, alternative="two-sided")
        p_t, t_value = float(result.pvalue), float(result.statistic)
    return {"n": n, "differences": differences, "mean_difference": mean, "sd_difference": sd,
            "standard_error": error, "ci95": [mean - half, mean + half], "t": t_value, "df": n - 1,
            "p": p_t, "p_wilcoxon_exact": wilcoxon_exact(differences)}


def wilcoxon_exact(differences: list[float]) -> float | None:
    """Two-sided exact Wilcoxon signed-rank p of ``differences`` (zeros dropped, as Wilcoxon
    did); ``None`` when every difference is zero."""
    from scipy import stats

    if not any(differences):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns that ties make the exact p approximate
        return float(stats.wilcoxon(differences, zero_method="wilcox", method="exact").pvalue)


def holm(p_values: list[float]) -> list[float]:
    """Holm-adjusted p values, in the order given (see the module docstring)."""
    from statsmodels.stats.multitest import multipletests

    if not p_values:
        return []
    return [float(p) for p in multipletests(p_values, method="holm")[1]]


def standardized_mde(n: int, alpha: float, power: float = 0.8) -> float:
    """The smallest standardized effect ``d̄ / s_d`` a two-sided paired t-test with ``n`` pairs
    detects at level ``alpha`` with probability ``power``."""
    from statsmodels.stats.power import TTestPower

    return float(TTestPower().solve_power(effect_size=None, nobs=n, alpha=alpha, power=power,
                                          alternative="two-sided"))


def minimal_detectable_effect(sd: float, n: int, alpha: float, power: float = 0.8) -> float:
    """``standardized_mde(n, alpha, power) · sd``: the detectable effect in the metric's units."""
    return standardized_mde(n, alpha, power) * sd
