"""What every benchmark result records about its machine, and how it is written."""

from __future__ import annotations

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


def code_provenance() -> dict:
    """The code a result comes from: resmo's version, the git commit of this checkout and
    whether it had uncommitted changes to the code (``src/`` and ``benchmarks/``, leaving out
    the results benchmarks write; ``commit`` null outside a git checkout)."""
    from provenance import git

    from resmo import __version__

    status = git("status", "--porcelain", "--untracked-files=no", "--", "src", "benchmarks",
                 ":(exclude)benchmarks/results")
    return {"resmo_version": __version__, "commit": git("rev-parse", "HEAD"),
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
