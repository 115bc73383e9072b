"""A smaller labelled image folder made of symbolic links: the first N images of each class.

Used by the ``--smoke`` protocols, which must finish in minutes: same layout
(``train/<class>/``, ``test/<class>/``), same files, fewer of them, nothing copied. The
images are chosen by resmo's class-balanced pick (:func:`resmo.data.subset.pick_indices`,
the one behind ``data.max_images``) without a seed: the first images of each class in
sorted name order.
"""

from __future__ import annotations

from pathlib import Path


def subset_folder(source: Path, target: Path, per_class: dict[str, int]) -> Path:
    """Link the first ``per_class[split]`` images (sorted names) of every class of each split
    (``per_class[split]`` times the number of classes in all: a class with fewer images gives
    all it has and the others make up the rest, as :func:`~resmo.data.subset.balanced_counts`).

    An existing ``target`` with the same links is reused; a different one is rebuilt.
    """
    from resmo.data.subset import pick_indices  # here: importing resmo.data loads torch

    source, target = Path(source).resolve(), Path(target)
    for split, count in per_class.items():
        class_dirs = sorted(p for p in (source / split).iterdir() if p.is_dir())
        files = [sorted(class_dir.glob("*.jpg")) for class_dir in class_dirs]
        paths = [path for class_files in files for path in class_files]
        labels = [label for label, class_files in enumerate(files) for _ in class_files]
        chosen = [paths[i] for i in pick_indices(labels, count * len(class_dirs), seed=None)]
        for class_dir in class_dirs:
            wanted = [path for path in chosen if path.parent == class_dir]
            out = target / split / class_dir.name
            out.mkdir(parents=True, exist_ok=True)
            names = {path.name for path in wanted}
            for stale in out.iterdir():
                if stale.name not in names:
                    stale.unlink()
            for path in wanted:
                link = out / path.name
                if link.is_symlink() and link.resolve() != path.resolve():
                    link.unlink()  # made from another source folder
                if not link.is_symlink():
                    link.symlink_to(path)
    return target
