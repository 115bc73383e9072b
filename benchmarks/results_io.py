"""What every benchmark result records about its machine, and how it is written."""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path


def machine_info(**extra) -> dict:
    """CPU count and model, Python, torch, its thread count and CUDA, plus ``extra`` fields."""
    import torch

    return {
        "cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(), "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available(), **extra,
    }


#: The code a result depends on, as git pathspecs: resmo's source and the benchmarks, without
#: the results they write (committing a result or a document does not change the code).
CODE_PATHS = ("src", "benchmarks", ":(exclude)benchmarks/results")
# (``code_tree`` filters benchmarks/results/ from ``git ls-tree`` itself: it takes no exclusions)


def code_provenance() -> dict:
    """The code a result comes from: resmo's version, the git commit of this checkout,
    ``code_tree`` (a SHA-256 of ``git ls-tree -r HEAD`` over :data:`CODE_PATHS`: equal for two
    commits whose code is the same, e.g. one that only added a result) and whether it had
    uncommitted changes to that code (``commit`` / ``code_tree`` null outside a git checkout)."""
    from benchmarks.provenance import git
    from resmo import __version__

    status = git("status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS)
    listing = git("ls-tree", "-r", "HEAD", "--", "src", "benchmarks")  # ls-tree takes no exclude pathspec
    tree = None if listing is None else "\n".join(
        line for line in listing.splitlines() if not line.split("\t", 1)[-1].startswith("benchmarks/results/"))
    return {"resmo_version": __version__, "commit": git("rev-parse", "HEAD"),
            "code_tree": hashlib.sha256(tree.encode()).hexdigest()[:16] if tree is not None else None,
            "dirty": bool(status) if status is not None else None}


def save_json(path: Path, result: dict) -> None:
    """Write ``result`` as JSON to ``path`` (folders created) atomically: a kill mid-write leaves
    the previous file, never a truncated one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(partial, path)


def write_result(path: Path, result: dict, *, shown: dict | None = None) -> dict:
    """Write ``result`` as JSON to ``path`` (folders created) with the code it comes from
    (``code``: :func:`code_provenance`, unless already there), print ``shown`` (default: all)."""
    result.setdefault("code", code_provenance())
    save_json(path, result)
    print(json.dumps(result if shown is None else shown, indent=2))
    return result


def cached_record(path: Path, budget: dict) -> dict | None:
    """The step record at ``path`` if it was made with ``budget`` (a dict of the budget's
    settings, compared as JSON), else ``None``: a changed budget never reuses a step."""
    if not Path(path).is_file():
        return None
    record = json.loads(Path(path).read_text())
    return record if record.get("budget") == json.loads(json.dumps(budget)) else None


def run_steps(keys: list[str], runs: Path, budget: dict, step, *, only: list[str] | None = None) -> dict | None:
    """Make every step ``keys`` names (``step(key) -> record``), each saved to
    ``runs/<key>.json`` as it finishes and reused from there while its budget is the same;
    ``only``: make just these now. Returns ``{key: record}`` once all exist, else ``None``
    (after saying which are missing and how to continue)."""
    import time

    records = {}
    for key in keys:
        path = Path(runs) / f"{key}.json"
        record = cached_record(path, budget)
        if record is None and (only is None or key in only):
            print(f"[{time.strftime('%H:%M:%S')}] {key}", flush=True)
            record = step(key)
            save_json(path, record)
        if record is not None:
            records[key] = record
    missing = [key for key in keys if key not in records]
    if missing:
        print(f"not yet made: {', '.join(missing)}; start the same command again to continue")
        return None
    return records
