"""Pre-registered confirmatory tests: the statistics on hand-checked cases, the YAML schema's
one-line errors, the analysis of toy runs, the governance rules in a throw-away git repository,
and every committed pre-registration against this checkout's history."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from benchmarks import preregistration_schema as schema
from benchmarks.paired_statistics import (
    holm,
    minimal_detectable_effect,
    paired_test,
    standardized_mde,
)
from benchmarks.preregistration_analysis import analyse, confirmed
from benchmarks.preregistration_governance import committed_after, fresh_seeds, violations
from benchmarks.preregistration_power import committed_differences, power_report, sd_upper_bound
from benchmarks.preregistration_schema import PREREGISTERED, Metric, PreregistrationError, load
from benchmarks.protocol import PROTOCOLS

ROOT = Path(__file__).resolve().parents[2]
#: the example in the schema's docstring, as a YAML text
EXAMPLE = textwrap.dedent(schema.__doc__.split("::\n\n", 1)[1].split("\nA metric of the", 1)[0])


# --- statistics -----------------------------------------------------------------------------
def test_paired_test_on_five_pairs_matches_the_hand_computation():
    # differences 1, 2, 3, 4, 5: mean 3, sd sqrt(2.5), se sqrt(0.5), t = 3 / sqrt(0.5) on 4 df
    result = paired_test([11, 12.5, 10, 14, 13], [10, 10.5, 7, 10, 8])
    t = 3 / math.sqrt(0.5)
    # Student's t CDF for 4 degrees of freedom in closed form
    cdf = 0.5 + 3 / 8 * (t / math.sqrt(1 + t * t / 4)) * (1 - t * t / (12 * (1 + t * t / 4)))
    assert result["n"] == 5 and result["df"] == 4
    assert result["mean_difference"] == pytest.approx(3.0)
    assert result["sd_difference"] == pytest.approx(math.sqrt(2.5))
    assert result["t"] == pytest.approx(t)
    assert result["p"] == pytest.approx(2 * (1 - cdf), rel=1e-9)
    assert result["p"] == pytest.approx(0.0132356, abs=1e-7)
    # t_{0.975, 4} = 2.776445 (tables: 2.776)
    assert result["ci95"] == pytest.approx([3 - 2.776445 * math.sqrt(0.5), 3 + 2.776445 * math.sqrt(0.5)], abs=1e-6)
    # all five signs positive: exact two-sided Wilcoxon p = 2 / 2^5
    assert result["p_wilcoxon_exact"] == pytest.approx(2 / 32)


def test_paired_test_refuses_unpaired_or_single_values():
    with pytest.raises(ValueError, match="same length >= 2"):
        paired_test([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="same length >= 2"):
        paired_test([1.0], [1.0])


def test_holm_adjusts_in_the_given_order():
    # sorted 0.01, 0.03, 0.04 -> 3 * 0.01, max(0.03, 2 * 0.03), max(0.06, 1 * 0.04)
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.01]) == pytest.approx([0.5, 0.02])


def test_minimal_detectable_effect_has_the_asked_power():
    from scipy import stats

    n, alpha = 8, 0.05 / 3
    d = standardized_mde(n, alpha, 0.8)
    critical = stats.t.ppf(1 - alpha / 2, n - 1)
    noncentral = d * math.sqrt(n)
    power = stats.nct.sf(critical, n - 1, noncentral) + stats.nct.cdf(-critical, n - 1, noncentral)
    assert power == pytest.approx(0.8, abs=1e-6)
    assert d == pytest.approx(1.4503, abs=1e-4)
    assert minimal_detectable_effect(2.0, n, alpha) == pytest.approx(2 * d)


def test_sd_upper_bound_uses_the_chi_square_quantile():
    # chi2_{0.2, 4} = 1.6488 (tables): bound = s * sqrt(4 / 1.6488)
    assert sd_upper_bound(1.0, 5) == pytest.approx(math.sqrt(4 / 1.648777), rel=1e-5)


@pytest.mark.parametrize(("expects", "mean", "p_holm", "expected"), [
    ("higher", 1.0, 0.01, True), ("higher", -1.0, 0.01, False), ("lower", -1.0, 0.01, True),
    ("different", -1.0, 0.01, True), ("higher", 1.0, 0.05, False), ("higher", 1.0, 0.2, False),
])
def test_decision_rule(expects, mean, p_holm, expected):
    assert confirmed(expects, mean, p_holm, 0.05) is expected


# --- schema -----------------------------------------------------------------------------------
def test_the_documented_example_is_a_valid_preregistration(tmp_path):
    path = tmp_path / "example.yaml"
    path.write_text(EXAMPLE)
    registered = load(path)
    assert registered.name == "resmo-short-2026-12"
    assert [h.id for h in registered.hypotheses] == ["H1", "H2"]
    assert registered.hypotheses[0].seeds == tuple(range(100, 108))
    assert registered.primary == Metric("knn", "student", "test", 20)
    assert [s.metric for s in registered.secondary] == [Metric("knn", "student", "test", 200),
                                                        Metric("linear", "student", "test")]
    assert registered.mde["value"] == pytest.approx(minimal_detectable_effect(0.7519, 8, 0.025), abs=0.01)


@pytest.mark.parametrize(("old", "new", "key", "message"), [
    ("arm_control: mocov3-w0\n", "arm_control: mocov3-w9\n", "hypotheses[0].arm_control", "not an arm of protocol 'full'"),
    ("alpha: 0.05", "alpha: 1.5", "alpha", "not in (0, 1)"),
    ("  value: 1.01", "  value: 0.5", "minimal_detectable_effect.value", "does not follow"),
    ("full: [100, 101, 102, 103, 104, 105, 106, 107]", "full: [100]", "seeds.full", "at least two"),
    ("direction: two-sided", "direction: greater", "hypotheses[0].direction", "not two-sided"),
    ("primary_endpoint: {probe: knn, encoder: student, k: 20, split: test}",
     "primary_endpoint: {probe: knn, encoder: student, split: test}", "primary_endpoint.k", "needs k"),
    ("correction: holm", "correction: bonferroni", "correction", "not holm"),
    ("test: paired-t", "test: paired-t\nextra: 1", "extra", "unknown key"),
    ("  - id: H2", "  - id: H1", "hypotheses", "ids repeat"),
    ("  same_commit: true", "  same_commit: yes please", "code.same_commit", "not true or false"),
])
def test_a_bad_key_stops_with_one_line_naming_file_and_key(tmp_path, old, new, key, message):
    assert old in EXAMPLE
    path = tmp_path / "bad.yaml"
    path.write_text(EXAMPLE.replace(old, new, 1))
    with pytest.raises(PreregistrationError) as error:
        load(path)
    text = str(error.value)
    assert "\n" not in text
    assert text.startswith(f"{path}: {key}: ") and message in text


# --- analysis of toy runs --------------------------------------------------------------------
#: per arm: seed -> (student kNN k20, teacher kNN k20); smoke-protocol arms, toy values
TOY = {
    "mocov3-w0.3": {100: (11.0, 1.0), 101: (12.5, 2.0), 102: (10.0, 3.0), 103: (14.0, 4.0), 104: (13.0, 5.0)},
    "mocov3-w0": {100: (10.0, 0.0), 101: (10.5, 0.0), 102: (7.0, 0.0), 103: (10.0, 0.0), 104: (8.0, 0.0)},
    "byol-w1": {100: (1.5, 0.0), 101: (0.5, 0.0), 102: (2.0, 0.0), 103: (1.0, 0.0), 104: (1.5, 0.0)},
    "byol-w0": {100: (1.0, 0.0), 101: (1.0, 0.0), 102: (1.0, 0.0), 103: (1.0, 0.0), 104: (1.0, 0.0)},
}


def write_runs(results: Path, *, commit: str = "a" * 40, threads: int = 1, **changes) -> None:
    protocol = PROTOCOLS["smoke"]
    for arm, seeds in TOY.items():
        for seed, (student, teacher) in seeds.items():
            key = f"{arm}-s{seed}"
            record = {"protocol": "smoke", "key": key, "seed": seed, "fingerprint": protocol.expected_fingerprint(key),
                      "machine": {"cpu_count": 2, "torch_threads": threads}, "code": {"commit": commit, "dirty": False},
                      "load_average_1min_start": 1.0, "load_average_1min_end": 2.0,
                      "knn": {"student": {"k20": student}, "teacher": {"k20": teacher}}}
            record.update(changes.get(key, {}))
            path = results / "smoke" / "runs" / f"{key}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(record))


def toy_preregistration(tmp_path: Path, results: Path, **code) -> Path:
    settings = {"same_commit": "true", "same_threads": "true", "clean": "true"} | code
    path = tmp_path / "toy.yaml"
    path.write_text(textwrap.dedent(f"""\
        name: toy
        date: 2026-12-07
        results: {results}
        code: {{same_commit: {settings['same_commit']}, same_threads: {settings['same_threads']}, clean: {settings['clean']}}}
        primary_endpoint: {{probe: knn, encoder: student, k: 20, split: test}}
        seeds: [100, 101, 102, 103, 104]
        hypotheses:
          - {{id: H1, description: toy MoCo, protocol: smoke, arm_treatment: mocov3-w0.3, arm_control: mocov3-w0,
             direction: two-sided, expects: higher}}
          - {{id: H2, description: toy BYOL, protocol: smoke, arm_treatment: byol-w1, arm_control: byol-w0,
             direction: two-sided, expects: higher}}
        test: paired-t
        correction: holm
        alpha: 0.05
        decision_rule: Holm-adjusted p below alpha and the expected sign.
        minimal_detectable_effect: {{value: 2.0, n: 5, alpha: 0.025, power: 0.8, sd: 1.0,
                                    derivation: toy}}
        secondary_endpoints:
          - {{id: teacher, metric: {{probe: knn, encoder: teacher, k: 20, split: test}}}}
        """))
    path.write_text(path.read_text().replace("value: 2.0", f"value: {minimal_detectable_effect(1.0, 5, 0.025):.3f}"))
    return path


def test_analysis_pairs_by_seed_and_adjusts_over_the_family(tmp_path):
    results = tmp_path / "results"
    write_runs(results)
    result = analyse(load(toy_preregistration(tmp_path, results)))
    first, second = result["hypotheses"]
    # H1: the five-pair case above; H2: differences 0.5, -0.5, 1, 0, 0.5
    assert first["differences"] == pytest.approx([1, 2, 3, 4, 5])
    assert first["p"] == pytest.approx(0.0132356, abs=1e-7)
    assert second["mean_difference"] == pytest.approx(0.3)
    assert second["p"] == pytest.approx(0.3045588, abs=1e-6)
    assert first["p_holm"] == pytest.approx(2 * first["p"])
    assert second["p_holm"] == pytest.approx(second["p"])
    assert (first["confirmed"], second["confirmed"]) == (True, False)
    assert first["p_wilcoxon_exact"] == pytest.approx(0.0625)
    teacher = result["secondary_endpoints"]["teacher"]
    assert teacher["exploratory"] is True
    assert teacher["by_hypothesis"]["H1"]["differences"] == pytest.approx([1, 2, 3, 4, 5])
    assert "p_holm" not in teacher["by_hypothesis"]["H1"]
    assert result["runs"]["count"] == 20
    assert result["runs"]["commits"] == {"a" * 40: sorted(f"{arm}-s{s}" for arm in TOY for s in TOY[arm])}
    assert result["runs"]["torch_threads"] == {"1": 20}
    assert result["runs"]["load_average_1min"] == {"min": 1.0, "max": 2.0}


@pytest.mark.parametrize(("changes", "message"), [
    ({"byol-w0-s103": {"code": {"commit": "b" * 40, "dirty": False}}}, "come from 2 code versions (aaaaaaaaaaaa: 19 runs, bbbbbbbbbbbb: 1 runs)"),
    ({"byol-w0-s103": {"machine": {"torch_threads": 2}}}, "used 2 thread counts (1 threads: 19 runs, 2 threads: 1 runs)"),
    ({"byol-w0-s103": {"code": {"commit": "a" * 40, "dirty": True}}}, "code.clean is true but 1 runs"),
    ({"byol-w0-s103": {"fingerprint": "0000"}}, "settings other than their protocol's current ones (smoke/byol-w0-s103)"),
    ({"byol-w0-s103": {"eval_split": "val"}}, "evaluated on the val split"),
    ({"byol-w0-s103": {"knn": {"student": {"k200": 1.0}}}}, "holds no knn_top1_student_k20 on test"),
])
def test_analysis_refuses_runs_that_break_the_preregistration(tmp_path, changes, message):
    results = tmp_path / "results"
    write_runs(results, **changes)
    with pytest.raises(PreregistrationError) as error:
        analyse(load(toy_preregistration(tmp_path, results)))
    assert message in str(error.value) and "\n" not in str(error.value)


def test_analysis_lists_commits_and_threads_when_the_preregistration_allows_them(tmp_path):
    results = tmp_path / "results"
    write_runs(results, **{"byol-w0-s103": {"code": {"commit": "b" * 40, "dirty": False},
                                            "machine": {"torch_threads": 2}}})
    result = analyse(load(toy_preregistration(tmp_path, results, same_commit="false", same_threads="false")))
    assert result["runs"]["commits"]["b" * 40] == ["byol-w0-s103"]
    assert result["runs"]["torch_threads"] == {"1": 19, "2": 1}


def test_analysis_reads_all_preregistered_runs_or_none(tmp_path):
    results = tmp_path / "results"
    write_runs(results)
    (results / "smoke" / "runs" / "mocov3-w0-s102.json").unlink()
    with pytest.raises(PreregistrationError, match=r"1 pre-registered runs are missing .*\(smoke/mocov3-w0-s102\)"):
        analyse(load(toy_preregistration(tmp_path, results)))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    return subprocess.run([sys.executable, "-m", "benchmarks.preregistration", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_analyses_and_writes_p_holm(tmp_path):
    results = tmp_path / "results"
    write_runs(results)
    out = tmp_path / "out" / "toy.json"
    done = run_cli("analyse", str(toy_preregistration(tmp_path, results)), "--out", str(out))
    assert done.returncode == 0, done.stderr
    written = json.loads(out.read_text())
    assert [h["p_holm"] for h in written["hypotheses"]] == pytest.approx([0.0264712, 0.3045588], abs=1e-6)
    assert "H1: n=5 mean difference +3.000" in done.stdout and "-> confirmed" in done.stdout
    check = written["manipulation_checks"]["H1"]  # the control arm's teacher minus its student, per seed
    assert check["arm"] == "mocov3-w0" and check["teacher"] == [0.0] * 5
    assert check["student"] == [10.0, 10.5, 7.0, 10.0, 8.0]
    assert check["mean_difference"] == pytest.approx(-9.1)


def test_cli_bad_preregistration_exits_2_with_one_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(EXAMPLE.replace("alpha: 0.05", "alpha: 5"))
    done = run_cli("analyse", str(path))
    assert done.returncode == 2
    assert done.stderr == f"python -m benchmarks.preregistration: error: {path}: alpha: 5 is not in (0, 1)\n"


# --- governance in a throw-away repository -----------------------------------------------------
class Repository:
    """A git repository in a temporary folder whose commits get increasing, chosen times."""

    def __init__(self, root: Path):
        self.root, self.time = root, 1_800_000_000
        self.git("init", "-q")

    def git(self, *args: str, when: int | None = None) -> str:
        stamp = f"{when or self.time} +0000"
        env = {**os.environ, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c",
                               "commit.gpgsign=false", *args], cwd=self.root, env=env, check=True,
                              capture_output=True, text=True).stdout.strip()

    def write(self, name: str, text: str = "{}") -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def commit(self, *paths: Path, when: int | None = None) -> None:
        self.time += 60
        if paths:
            self.git("add", *map(str, paths))
        self.git("commit", "-q", "-m", "commit", when=when)


RUNS = "results/quality/full/runs"


def test_results_must_be_committed_after_the_preregistration(tmp_path):
    repo = Repository(tmp_path)
    early = repo.write(f"{RUNS}/mocov3-w0-s100.json")
    repo.commit(early)
    registered = repo.write("preregistered/p.yaml", "name: p")
    repo.commit(registered)
    late = repo.write(f"{RUNS}/mocov3-w0.3-s100.json")
    repo.commit(late)
    running = repo.write(f"{RUNS}/byol-w0-s101.json")  # not committed yet: fine
    found = committed_after(registered, [early, late, running], tmp_path)
    assert len(found) == 1 and found[0].startswith(f"{early}: committed (") and "not after" in found[0]
    # committed together with the pre-registration is not after it
    registered_too = repo.write("preregistered/q.yaml", "name: q")
    together = repo.write(f"{RUNS}/byol-w1-s103.json")
    repo.commit(registered_too, together)
    assert len(committed_after(registered_too, [together], tmp_path)) == 1
    # a later commit that claims an earlier time
    backdated = repo.write(f"{RUNS}/byol-w1-s104.json")
    repo.commit(backdated, when=1_700_000_000)
    assert len(committed_after(registered, [backdated], tmp_path)) == 1
    assert committed_after(registered, [late], tmp_path) == []


def test_results_on_a_branch_without_the_preregistration_break_the_rule(tmp_path):
    repo = Repository(tmp_path)
    base = repo.write("README", "x")
    repo.commit(base)
    registered = repo.write("preregistered/p.yaml", "name: p")
    repo.commit(registered)
    main = repo.git("rev-parse", "--abbrev-ref", "HEAD")
    repo.git("checkout", "-q", "-b", "side", "HEAD~1")
    aside = repo.write(f"{RUNS}/mocov3-w0-s100.json")
    repo.commit(aside)  # later in time, but not a descendant of the pre-registration's commit
    repo.time += 60
    repo.git("merge", "-q", "--no-edit", "-m", "merge", main)  # both now in history
    found = committed_after(registered, [aside], tmp_path)
    assert len(found) == 1 and "not after the pre-registration" in found[0]


def test_uncommitted_preregistration_with_committed_results_breaks_the_rule(tmp_path):
    repo = Repository(tmp_path)
    result = repo.write(f"{RUNS}/mocov3-w0-s100.json")
    repo.commit(result)
    registered = repo.write("preregistered/p.yaml", "name: p")
    assert "while the pre-registration" in committed_after(registered, [result], tmp_path)[0]
    assert len(fresh_seeds(registered, {100}, tmp_path / "results", tmp_path)) == 1


def test_seeds_must_be_fresh(tmp_path):
    repo = Repository(tmp_path)
    old = [repo.write(f"{RUNS}/mocov3-w0-s5.json"), repo.write("results/quality/long/runs/byol-w1-s7.json"),
           repo.write("results/quality/full/summary.json")]
    repo.commit(*old)
    gone = repo.write(f"{RUNS}/random-s9.json")
    repo.commit(gone)
    repo.git("rm", "-q", str(gone))
    repo.commit()
    registered = repo.write("preregistered/p.yaml", "name: p")
    repo.commit(registered)
    later = repo.write(f"{RUNS}/mocov3-w0-s100.json")
    repo.commit(later)
    results = tmp_path / "results"
    assert fresh_seeds(registered, {100, 101}, results, tmp_path) == []  # s100 came after
    found = fresh_seeds(registered, {5, 7, 9, 100}, results, tmp_path)
    assert [line.split(": seed ")[1].split()[0] for line in found] == ["5", "7", "9"]  # a deleted file counts
    assert f"{RUNS}/mocov3-w0-s5.json" in found[0]


def test_power_reads_committed_pairs_only(tmp_path):
    repo = Repository(tmp_path)
    protocol = PROTOCOLS["full"]
    folder = "benchmarks/results/quality/full/runs"
    paths = []
    for arm, base in (("mocov3-w0.3", 1.0), ("mocov3-w0", 0.0)):
        for seed, value in zip(range(3), (1.0, 2.0, 4.0), strict=True):
            key = f"{arm}-s{seed}"
            record = {"fingerprint": protocol.expected_fingerprint(key), "code": {"commit": "c" * 40},
                      "knn": {"student": {"k20": base * value}}}
            paths.append(repo.write(f"{folder}/{key}.json", json.dumps(record)))
    repo.commit(*paths[:-1])  # mocov3-w0-s2 stays uncommitted
    pairs = committed_differences("full", "mocov3-w0.3", "mocov3-w0", Metric("knn", "student", "test", 20),
                                  root=tmp_path)
    assert pairs == {"seeds": [0, 1], "differences": [1.0, 2.0], "commits": ["c" * 40]}
    with pytest.raises(PreregistrationError, match="has 0 committed pairs of knn_top1_student_k200"):
        power_report(root=tmp_path)


# --- the committed pre-registrations ----------------------------------------------------------
@pytest.mark.parametrize("path", sorted(PREREGISTERED.glob("*.yaml")), ids=lambda p: p.name)
def test_committed_preregistrations_are_valid_and_predate_their_results(path):
    assert violations(load(path), ROOT) == []
