"""The two rules that make a pre-registration one: it predates its results, and its seeds are fresh.

(a) :func:`committed_after`: every result file it governs (the run files of its hypotheses'
    arms at its seeds, and its analysis output) that is committed was first added by a commit
    that descends from, and is not, the commit that first added the pre-registration, and is
    not older by commit time. A result file not yet committed is fine (runs in progress); a
    committed one with the pre-registration uncommitted is not.
(b) :func:`fresh_seeds`: no seed of the pre-registration names a result file that history
    added before the pre-registration (every ``<protocol>/runs/<run>-s<seed>.json`` under the
    results folder, of any protocol, and under the folders whose runs share its benchmark's
    pretraining: a seed is fresh only if no committed run used it). With the pre-registration
    uncommitted, all of the checkout's history counts as before.

Both read git history only (``git log --diff-filter=A``); they return the violations, one line
each, so that a test or the command line can print them all.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.preregistration_schema import ROOT, Preregistration
from benchmarks.provenance import git


def added_commit(path: Path, root: Path = ROOT) -> str | None:
    """The commit that first added ``path`` to ``root``'s history (``None``: never committed,
    outside the repository, or no git)."""
    added = (git("log", "--format=%H", "--diff-filter=A", "--", str(Path(path).resolve()), root=root) or "").split()
    return added[-1] if added else None


def _commit_time(commit: str, root: Path) -> int:
    return int(git("show", "-s", "--format=%ct", commit, root=root))


def _is_ancestor(ancestor: str, commit: str, root: Path) -> bool:
    return git("merge-base", "--is-ancestor", ancestor, commit, root=root) is not None


def committed_after(preregistration: Path, results: list[Path], root: Path = ROOT) -> list[str]:
    """Rule (a) for the pre-registration file ``preregistration`` and the files ``results`` it
    governs."""
    registered = added_commit(preregistration, root)
    violations = []
    for path in results:
        commit = added_commit(path, root)
        if commit is None:
            continue
        if registered is None:
            violations.append(f"{path}: committed ({commit[:12]}) while the pre-registration {preregistration} "
                              f"is not")
        elif (commit == registered or not _is_ancestor(registered, commit, root)
              or _commit_time(commit, root) < _commit_time(registered, root)):
            violations.append(f"{path}: committed ({commit[:12]}) not after the pre-registration {preregistration} "
                              f"({registered[:12]})")
    return violations


def seeds_used_before(preregistration: Path, results: Path, root: Path = ROOT) -> dict[int, list[str]]:
    """``seed -> result files`` that history added under ``results`` before the commit that first
    added ``preregistration`` (all history when it is uncommitted): files named
    ``<protocol>/runs/<run>-s<seed>.json``."""
    registered = added_commit(preregistration, root)
    if registered is None:
        before = "HEAD"
    elif git("rev-parse", "--verify", "--quiet", f"{registered}^", root=root) is not None:
        before = f"{registered}^"
    else:
        return {}  # the pre-registration came with the first commit: nothing before it
    listing = git("log", before, "--diff-filter=A", "--name-only", "--format=", "--", str(Path(results).resolve()),
                  root=root)
    used: dict[int, list[str]] = {}
    for name in (listing or "").split():
        parts = Path(name).parts
        stem, _, seed = Path(name).stem.rpartition("-s")
        if len(parts) >= 3 and parts[-2] == "runs" and name.endswith(".json") and stem and seed.isdigit():
            used.setdefault(int(seed), []).append(name)
    return used


def fresh_seeds(preregistration: Path, seeds: set[int], results: Path, root: Path = ROOT) -> list[str]:
    """Rule (b): the seeds of ``seeds`` that a result file committed before ``preregistration`` used."""
    used = seeds_used_before(preregistration, results, root)
    return [f"{preregistration}: seed {seed} was used by {len(used[seed])} earlier committed results "
            f"(e.g. {sorted(used[seed])[0]})" for seed in sorted(seeds) if seed in used]


def governed_results(preregistration: Preregistration) -> list[Path]:
    """The result files ``preregistration`` governs: its runs and its analysis output."""
    files = {path for hypothesis in preregistration.hypotheses for path in preregistration.run_files(hypothesis).values()}
    return sorted(files) + [preregistration.output_file()]


def violations(preregistration: Preregistration, root: Path = ROOT) -> list[str]:
    """Rules (a) and (b) for ``preregistration`` in ``root``'s history."""
    seeds = set().union(*preregistration.seeds_by_protocol().values())
    folders = [preregistration.results, *(root / folder for folder in preregistration.source.shares_seeds_with)]
    return (committed_after(preregistration.path, governed_results(preregistration), root)
            + [line for folder in folders for line in fresh_seeds(preregistration.path, seeds, folder, root)])
