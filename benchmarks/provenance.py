"""Whether a committed result still describes the code: stale marking for docs/benchmarks.md.

Each result records the commit of the code that produced it (``code.commit``, written by
``results_io.code_provenance``). A result is **stale** when a later commit of the
checkout's history changed a path it depends on (``DEPENDS``: resmo's source outside the
report and command-line layers, and the benchmark's own scripts) and those paths differ
from the result's commit (a change and its revert leave it current); it is **unrecorded**
when it names no commit (made before results recorded one) or a commit this history
lacks. The renderer prints one line per section saying which, with the command that
re-runs it. Only committed history counts: uncommitted edits are not a "later change".
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: resmo's code that the pretraining benchmarks do not measure: reports, plots, sub-command front
#: ends, detection transfer (downstream of pretraining); a kind whose DEPENDS names one of these
#: paths (detection: src/resmo/transfer) depends on it all the same
NOT_MEASURED = (":(exclude)src/resmo/report", ":(exclude)src/resmo/commands", ":(exclude)src/resmo/transfer")

#: result kind -> the paths whose changes can alter what it measured
DEPENDS: dict[str, tuple[str, ...]] = {
    "quality": ("src/resmo", "benchmarks/quality_cifar10.py", "benchmarks/quality_summary.py",
                "benchmarks/protocol.py", "benchmarks/lightly_baselines.py", "benchmarks/folder_subset.py"),
    "speed": ("src/resmo", "benchmarks/speed_cpu.py", "benchmarks/lightly_baselines.py"),
    "views": ("src/resmo/data", "benchmarks/view_generation.py"),
    "gpu": ("src/resmo", "benchmarks/gpu_cifar10.py", "benchmarks/gpu_throughput.py"),
    "quickstart": ("src/resmo", "benchmarks/quickstart.py"),
    "loop": ("src/resmo", "benchmarks/loop_overhead.py"),
    "before_after": ("src/resmo", "benchmarks/loop_before_after.py"),
    "detection": ("src/resmo", "src/resmo/transfer", "benchmarks/detection_scenes.py", "benchmarks/cifar10_scenes.py"),
}


def git(*args: str, root: Path | None = None) -> str | None:
    """The stripped output of ``git ARGS`` in ``root`` (default: this checkout), ``None`` when
    git fails or is missing."""
    try:
        return subprocess.run(["git", "-c", "safe.directory=*", *args], cwd=root or ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


@dataclass(frozen=True)
class Freshness:
    """``commits``: the code the result comes from; ``changed_by``: later commits (newest
    first) that changed what it depends on; ``unknown``: commits this history lacks."""

    commits: tuple[str, ...]
    changed_by: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()

    @property
    def current(self) -> bool:
        return bool(self.commits) and not self.changed_by and not self.unknown


def freshness(commits: list[str] | tuple[str, ...], kind: str, *, root: Path | None = None) -> Freshness:
    """How the results made at ``commits`` stand against the history's HEAD for ``kind``."""
    root = root or ROOT
    paths = [*DEPENDS[kind], *(p for p in NOT_MEASURED if p.removeprefix(":(exclude)") not in DEPENDS[kind])]
    changed: list[str] = []
    unknown: list[str] = []
    for commit in dict.fromkeys(commits):
        if git("cat-file", "-e", f"{commit}^{{commit}}", root=root) is None:
            unknown.append(commit)
            continue
        if not git("diff", "--name-only", commit, "HEAD", "--", *paths, root=root):
            continue  # later commits undid each other: the files it depends on are as they were
        later = git("log", "--format=%h", f"{commit}..HEAD", "--", *paths, root=root) or ""
        changed += [c for c in later.split() if c not in changed]
    return Freshness(tuple(commits), tuple(changed), tuple(unknown))


def is_ancestor(older: str, newer: str, *, root: Path | None = None) -> bool:
    """Whether commit ``older`` is ``newer`` or one of its ancestors in this history."""
    return git("merge-base", "--is-ancestor", older, newer, root=root or ROOT) is not None


def result_commits(result: dict) -> list[str]:
    """The commits a result names: its own ``code`` record, or its runs' (``code_commits``)."""
    commits = list(result.get("code_commits") or [])
    code = result.get("code") or {}
    if code.get("commit"):
        commits.append(code["commit"])
    return commits


def freshness_text(result: dict, kind: str, rerun: str, *, root: Path | None = None) -> str:
    """One line for the docs: the code a result comes from, and whether it is stale."""
    commits = result_commits(result)
    if not commits:
        return (f"**Code not recorded**: made before results named their commit, so it may describe "
                f"older code; re-run `{rerun}`.")
    state = freshness(commits, kind, root=root)
    shown = ", ".join(f"`{c[:7]}`" for c in dict.fromkeys(commits))
    if state.unknown:
        return f"**Code not in this history** ({shown}); re-run `{rerun}`."
    if state.changed_by:
        later = ", ".join(f"`{c}`" for c in state.changed_by[:3])
        more = f" and {len(state.changed_by) - 3} more" if len(state.changed_by) > 3 else ""
        return (f"**Stale**: made by the code at {shown}; what it measures has changed since "
                f"({later}{more}); re-run `{rerun}`.")
    noun = "commits" if len(dict.fromkeys(commits)) > 1 else "commit"
    return f"Code: {noun} {shown}, current (nothing it depends on changed since)."
