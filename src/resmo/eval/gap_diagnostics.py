"""Gap diagnostics of a checkpoint on held-out images (``resmo gap``).

For every held-out image ``x`` (deterministic eval transform; student and teacher in eval
mode) and every level ``l`` in features (backbone), projection and output (what the SSL
loss compares: the predictor's output for the student, the projection for the teacher):

    cos_l(x)      = cos(student_l(x), teacher_l(x))          (same view)
    intra_gap_l   = 1 - mean_x cos_l(x)                       (as resmo.eval.gap.intra_gap)

plus a histogram of ``cos_l`` and the **accuracy gap** ``teacher - student`` of weighted
kNN top-1 / top-5 (cached features, :mod:`resmo.eval.features`) and, when a linear-probe
result of the same checkpoint and data exists, of the linear probe.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from resmo.data.eval_batches import eval_loader
from resmo.eval.features import EvalData, cached_features, resolve_device
from resmo.eval.knn import weighted_knn
from resmo.eval.results import header, read_results, result_path, write_result
from resmo.eval.runs import ENCODERS, LoadedRun
from resmo.losses.resmo import LEVELS
from resmo.methods import MomentumMethod

HISTOGRAM_BINS = 50


@torch.no_grad()
def same_view_cosines(
    method: MomentumMethod, loader, *, device: torch.device | str = "cpu"
) -> dict[str, torch.Tensor]:
    """Per level, ``cos(student_l(x), teacher_l(x))`` for every image of ``loader`` ([N])."""
    was_training = method.training
    method.eval().to(device)
    cosines: dict[str, list[torch.Tensor]] = {level: [] for level in LEVELS}
    try:
        for images, _labels in loader:
            views = [images.to(device)]
            student, teacher = method.encode_student(views), method.encode_teacher(views)
            for level in LEVELS:
                s, t = student.level(level)[0].float(), teacher.level(level)[0].float()
                cosines[level].append(F.cosine_similarity(s, t, dim=-1).cpu())
    finally:
        method.train(was_training).to("cpu")
    return {level: torch.cat(values) for level, values in cosines.items()}


def histogram_range(values: torch.Tensor, *, tail: float = 0.005, margin: float = 0.05) -> tuple[float, float]:
    """The ``tail`` .. ``1 - tail`` quantiles of ``values`` widened by ``margin`` of their span
    (at least 1e-4), within [-1, 1]: where the cosines are, not the whole [-1, 1]."""
    low, high = torch.quantile(values.float(), torch.tensor([tail, 1.0 - tail])).tolist()
    pad = max(margin * (high - low), 1e-4)
    return max(low - pad, -1.0), min(high + pad, 1.0)


def cosine_histogram(
    cosines: torch.Tensor, *, bins: int | None = None, value_range: tuple[float, float] | None = None
) -> dict[str, list]:
    """Counts of ``cosines`` in ``bins`` equal bins (default: the square-root choice,
    10 to ``HISTOGRAM_BINS``) over ``value_range`` (default :func:`histogram_range`; edges
    included). Values outside go to the first / last bin, so the counts add up to the
    number of images."""
    bins = bins or min(HISTOGRAM_BINS, max(10, round(cosines.numel() ** 0.5)))
    low, high = value_range or histogram_range(cosines)
    counts = torch.histc(cosines.float().clamp(low, high), bins=bins, min=low, max=high)
    edges = torch.linspace(low, high, bins + 1)
    return {"edges": edges.tolist(), "counts": [int(c) for c in counts.tolist()]}


def accuracy_gap_knn(
    run: LoadedRun, data: EvalData, *, k: int = 20, temperature: float = 0.07, **extract: Any
) -> dict[str, Any]:
    """kNN top-1 / top-5 of student and teacher and ``teacher - student``."""
    scores = {}
    for encoder in ENCODERS:
        bank, bank_labels = cached_features(run, encoder, data, "train", **extract)
        queries, query_labels = cached_features(run, encoder, data, "val", **extract)
        result = weighted_knn(bank, bank_labels, queries, query_labels, k=k,
                              temperature=temperature, num_classes=data.num_classes)
        scores[encoder] = {"top1": result.top1, "top5": result.top5}
    gap = {m: scores["teacher"][m] - scores["student"][m] for m in ("top1", "top5")}
    return {"k": k, "temperature": temperature, **scores, "teacher_minus_student": gap}


def _linear_gap(run: LoadedRun, data: EvalData) -> dict[str, Any] | None:
    for kind in ("linear", "linear_augmented"):
        for saved in read_results(run.folder, kind):
            same = saved.get("checkpoint_sha256") == run.checkpoint_sha256 and saved.get("data_tag") == data.tag
            if same and saved.get("teacher_minus_student"):
                return {"kind": kind, "results": saved["results"], "teacher_minus_student": saved["teacher_minus_student"]}
    return None


def measure_gap(
    run: LoadedRun, data: EvalData, *, k: int = 20, temperature: float = 0.07, batch_size: int = 256,
    device: str = "auto", num_workers: int = 0, use_cache: bool = True,
    plot: Callable[..., Path] | None = None,
) -> dict[str, Any]:
    """Intra gap per level, cosine histograms, accuracy gaps; ``eval/gap-<data>.json`` and,
    given ``plot`` (``resmo.report.histogram.plot_cosine_histograms``: evaluation does not
    import the plotting layer), ``eval/gap_hist-<data>.png``."""
    target = resolve_device(device)
    loader = eval_loader(data.val, data.image_size, batch_size=batch_size, num_workers=num_workers)
    cosines = same_view_cosines(run.method, loader, device=target)
    extract = {"batch_size": batch_size, "device": device, "num_workers": num_workers, "use_cache": use_cache}
    payload = header(run, data, "gap") | {
        "split": "val",
        "intra_gap": {level: 1.0 - float(values.mean()) for level, values in cosines.items()},
        "cosine_mean": {level: float(values.mean()) for level, values in cosines.items()},
        "cosine_std": {level: float(values.std()) if values.numel() > 1 else 0.0 for level, values in cosines.items()},
        "cosine_histogram": {level: cosine_histogram(values) for level, values in cosines.items()},
        "knn": accuracy_gap_knn(run, data, k=k, temperature=temperature, **extract),
        "linear": _linear_gap(run, data),
    }
    if plot is not None:
        png = run.results_dir / f"gap_hist-{data.tag}.png"
        title = f"same-view cos(student, teacher), {data.name} val, {run.config.method} ({run.folder.name})"
        payload["histogram_png"] = str(plot(
            payload["cosine_histogram"], png, title=title, gaps=payload["intra_gap"], means=payload["cosine_mean"]))
    payload["path"] = str(write_result(result_path(run, "gap", data), payload))
    return payload
