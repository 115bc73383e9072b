"""kNN and linear probes of a run's student and teacher backbones, saved as JSON.

- :func:`evaluate_knn`: weighted kNN (:func:`resmo.eval.knn.weighted_knn`, cosine
  similarity, ``exp(cos / T)`` votes, T = 0.07) for each ``k`` (default 20 and 200);
- :func:`evaluate_linear`: the linear probe of :mod:`resmo.eval.linear` on cached
  features, or with ``augment=True`` the one of :mod:`resmo.eval.linear_augmented`.

Both use the cached features of :mod:`resmo.eval.features`, report top-1 / top-5 in % on
the held-out split per encoder, and the accuracy gap ``teacher - student``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from resmo.eval.features import EvalData, cached_features, resolve_device
from resmo.eval.knn import weighted_knn
from resmo.eval.linear import evaluate_probe, fit_linear_probe, standardizer
from resmo.eval.linear_augmented import fit_linear_probe_on_views
from resmo.eval.results import header, result_path, teacher_minus_student, write_result
from resmo.eval.runs import LoadedRun
from resmo.validation import check_positive, check_positive_int


def _features(run: LoadedRun, encoder: str, data: EvalData, **extract) -> tuple:
    train = cached_features(run, encoder, data, "train", **extract)
    val = cached_features(run, encoder, data, "val", **extract)
    return train, val


def evaluate_knn(
    run: LoadedRun, data: EvalData, encoders: Sequence[str], *, ks: Sequence[int] = (20, 200),
    temperature: float = 0.07, **extract: Any,
) -> dict[str, Any]:
    """kNN top-1 / top-5 per encoder and ``k``; written to ``eval/knn-<data>.json``.

    ``extract``: ``batch_size``, ``device``, ``num_workers``, ``use_cache`` of
    :func:`~resmo.eval.features.cached_features`.
    """
    ks = [check_positive_int("k", k) for k in ks]
    check_positive("temperature", temperature)
    results: dict[str, dict[str, dict[str, float]]] = {}
    for encoder in encoders:
        (bank, bank_labels), (queries, query_labels) = _features(run, encoder, data, **extract)
        results[encoder] = {}
        for k in ks:
            knn = weighted_knn(
                bank, bank_labels, queries, query_labels, k=k, temperature=temperature,
                num_classes=data.num_classes,
            )
            results[encoder][f"k{k}"] = {"top1": knn.top1, "top5": knn.top5, "k_used": knn.k}
    payload = header(run, data, "knn") | {"k": ks, "temperature": temperature, "results": results}
    gaps = {
        f"k{k}": teacher_minus_student({e: {m: v for m, v in r[f"k{k}"].items() if m != "k_used"}
                                        for e, r in results.items()})
        for k in ks
    }
    payload["teacher_minus_student"] = gaps if all(v is not None for v in gaps.values()) else None
    payload["path"] = str(write_result(result_path(run, "knn", data), payload))
    return payload


def evaluate_linear(
    run: LoadedRun, data: EvalData, encoders: Sequence[str], *, steps: int = 200,
    weight_decay: float = 1e-4, augment: bool = False, epochs: int = 10, lr: float = 1e-3,
    seed: int = 0, **extract: Any,
) -> dict[str, Any]:
    """Linear-probe top-1 / top-5 per encoder; ``eval/linear-<data>.json`` (or
    ``linear_augmented-<data>.json`` with ``augment``)."""
    kind = "linear_augmented" if augment else "linear"
    results: dict[str, dict[str, float]] = {}
    for encoder in encoders:
        (train_x, train_y), (val_x, val_y) = _features(run, encoder, data, **extract)
        if augment:
            mean, std = standardizer(train_x)
            device = resolve_device(extract.get("device", "auto"))
            backbone = run.encoder(encoder).to(device)
            try:
                probe = fit_linear_probe_on_views(
                    backbone, data.train, image_size=data.image_size,
                    num_classes=data.num_classes, mean=mean, std=std, epochs=epochs, lr=lr,
                    weight_decay=weight_decay, batch_size=extract.get("batch_size", 256), seed=seed,
                    device=device, num_workers=extract.get("num_workers", 0),
                )
            finally:
                backbone.to("cpu")
        else:
            probe = fit_linear_probe(
                train_x, train_y, num_classes=data.num_classes, steps=steps, weight_decay=weight_decay,
            )
        result = evaluate_probe(probe, train_x, train_y, val_x, val_y)
        results[encoder] = {"top1": result.top1, "top5": result.top5, "train_top1": result.train_top1}
    settings: dict[str, Any] = {"weight_decay": weight_decay}
    settings |= {"epochs": epochs, "lr": lr, "seed": seed} if augment else {"lbfgs_steps": steps}
    payload = header(run, data, kind) | {"settings": settings, "results": results}
    payload["teacher_minus_student"] = teacher_minus_student(results)
    payload["path"] = str(write_result(result_path(run, kind, data), payload))
    return payload
