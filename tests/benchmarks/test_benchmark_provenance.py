"""A committed result from code older than the last change to what it measures is shown as stale."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from benchmarks import provenance, render_docs


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout.strip()


def commit(root: Path, path: str, text: str) -> str:
    file = root / path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(text)
    git(root, "add", path)
    git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", f"change {path}")
    return git(root, "rev-parse", "HEAD")


@pytest.fixture
def history(tmp_path, monkeypatch):
    git(tmp_path, "init", "-q")
    first = commit(tmp_path, "src/resmo/train/loop.py", "one\n")
    monkeypatch.setattr(provenance, "ROOT", tmp_path)
    return tmp_path, first


def quickstart(commit_sha: str | None) -> dict:
    result = {
        "command": "resmo pretrain", "date": "2026-12-02", "seed": 0,
        "machine": {"cpu_count": 2, "processor": "x86_64", "torch": "2.14.1", "torch_threads": 2,
                    "load_average_1min": 0.1},
        "load_average_1min_after": 1.0, "settings": {"epochs": 4, "batch_size": 64, "resmo_weight": 1.0},
        "wall_seconds_total": 47.0, "knn_top1_student": 48.7, "knn_top1_teacher": 39.2,
        "knn_top1_random_init": 25.9, "margin_points": 22.8,
        "targets": {"wall_seconds_total_max": 60, "margin_points_min": 15},
    }
    if commit_sha:
        result["code"] = {"resmo_version": "0.1.0", "commit": commit_sha, "dirty": False}
    return result


def test_a_result_is_current_until_code_it_depends_on_changes(history):
    root, first = history
    assert provenance.freshness([first], "quickstart").current
    commit(root, "docs/benchmarks.md", "text\n")           # not code
    commit(root, "src/resmo/report/plots.py", "plot\n")    # code no benchmark measures
    assert provenance.freshness([first], "quickstart").current
    change = commit(root, "src/resmo/train/loop.py", "two\n")
    state = provenance.freshness([first], "quickstart")
    assert not state.current and state.changed_by == (change[:7],)
    assert provenance.freshness([change], "quickstart").current
    # a change under src/resmo/data/ concerns the view benchmark; one in train/ does not
    assert provenance.freshness([first], "views").current


def test_a_change_and_its_revert_leave_a_result_current(history):
    root, first = history
    commit(root, "src/resmo/train/loop.py", "two\n")
    assert not provenance.freshness([first], "quickstart").current
    commit(root, "src/resmo/train/loop.py", "one\n")      # back to what the result was made with
    assert provenance.freshness([first], "quickstart").current


def test_the_renderer_marks_a_result_from_older_code_as_stale(history):
    root, first = history
    text = "\n".join(render_docs.quickstart_section(quickstart(first)))
    assert f"Code: commit `{first[:7]}`, current" in text and "Stale" not in text
    change = commit(root, "benchmarks/quickstart.py", "new script\n")
    text = "\n".join(render_docs.quickstart_section(quickstart(first)))
    assert (f"**Stale**: made by the code at `{first[:7]}`; what it measures has changed since "
            f"(`{change[:7]}`); re-run `python -m benchmarks.quickstart`.") in text
    assert "47.0" in text  # the numbers are still shown, marked


def test_results_without_a_known_commit_say_so(history):
    assert "**Code not recorded**" in "\n".join(render_docs.quickstart_section(quickstart(None)))
    missing = "0" * 40
    assert "**Code not in this history** (`0000000`)" in "\n".join(render_docs.quickstart_section(quickstart(missing)))


def test_a_quality_summary_is_stale_when_any_of_its_runs_is(history):
    root, first = history
    second = commit(root, "benchmarks/protocol.py", "arms\n")
    assert provenance.freshness([second], "quality").current
    state = provenance.freshness([first, second], "quality")
    assert not state.current and state.changed_by == (second[:7],)


def test_a_summary_made_by_two_commits_that_measure_the_same_names_both(history):
    root, first = history
    docs = commit(root, "docs/notes.md", "prose\n")  # changes nothing the quality runs depend on
    assert provenance.freshness_text({"code_commits": [first, docs]}, "quality", "run it") == (
        f"Code: commits `{first[:7]}`, `{docs[:7]}`, current (nothing it depends on changed since).")


def test_a_later_exact_recheck_vouches_for_older_quality_runs(history, monkeypatch):
    root, first = history
    change = commit(root, "src/resmo/train/loop.py", "two\n")
    runs = {"command": "python benchmarks/quality_cifar10.py", "code_commits": [first]}
    monkeypatch.setattr(render_docs, "QUALITY_RECHECKS", [])
    assert render_docs.quality_freshness(runs).startswith("**Stale**")
    monkeypatch.setattr(render_docs, "QUALITY_RECHECKS", [("2026-12-03", change[:7], "same numbers")])
    text = render_docs.quality_freshness(runs)
    assert f"made by the code at `{first[:7]}`; judged by the last re-check" in text
    assert text.endswith(f"Code: commit `{change[:7]}`, current (nothing it depends on changed since).")
    later = commit(root, "src/resmo/losses/resmo.py", "new loss\n")  # after the re-check: stale again
    assert f"changed since (`{later[:7]}`)" in render_docs.quality_freshness(runs)
    # a re-check from before the runs vouches for nothing
    monkeypatch.setattr(render_docs, "QUALITY_RECHECKS", [("2026-12-03", first[:7], "same numbers")])
    assert render_docs.quality_freshness({**runs, "code_commits": [later]}).startswith("Code: commit")
    assert "judged by" not in render_docs.quality_freshness({**runs, "code_commits": [later]})


def test_a_result_recorded_as_a_script_path_is_quoted_as_recorded_and_rerun_as_a_module():
    """Results made before benchmarks/ became a package recorded ``python benchmarks/<name>.py``:
    the page quotes that command and tells the reader to re-run ``python -m benchmarks.<name>``."""
    loop = {"command": "python benchmarks/loop_overhead.py --tiny", "rounds": 3, "date": "2026-12-02",
            "machine": {"cpu_count": 2, "processor": "x86_64", "torch": "2.14.1", "torch_threads": 2,
                        "load_average_1min": 0.1},
            "load_average_1min_after": 1.0, "loop_median": 90.0, "bare_median": 100.0, "ratio": 0.9,
            "target_ratio": 0.9}
    text = "\n".join(render_docs.loop_section(loop))
    assert "Measured by `python benchmarks/loop_overhead.py --tiny`, 3 rounds" in text
    assert "re-run `python -m benchmarks.loop_overhead --tiny`." in text
    assert render_docs.rerun("python -m benchmarks.speed_cpu --tiny") == "python -m benchmarks.speed_cpu --tiny"
    assert render_docs.rerun("resmo pretrain") == "resmo pretrain"


def test_code_tree_ignores_results_and_follows_the_code(monkeypatch):
    """Two commits that differ only in a result share ``code_tree``; a code change does not."""
    import benchmarks.provenance as provenance
    from benchmarks.results_io import code_provenance

    def tree(src_blob: str, result_blob: str):
        listing = (f"100644 blob {src_blob}\tsrc/resmo/a.py\n100644 blob 11\tbenchmarks/protocol.py\n"
                   f"100644 blob {result_blob}\tbenchmarks/results/quality/full/runs/x.json")
        return lambda *args: {"ls-tree": listing, "rev-parse": "c0ffee", "status": ""}[args[0]]

    trees = []
    for src_blob, result_blob in (("aa", "r1"), ("aa", "r2"), ("ab", "r2")):
        monkeypatch.setattr(provenance, "git", tree(src_blob, result_blob))
        trees.append(code_provenance()["code_tree"])
    assert trees[0] == trees[1] != trees[2]
