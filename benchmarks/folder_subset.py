"""A smaller labelled image folder made of symbolic links: the first N images of each class.

Used by the ``--smoke`` protocols, which must finish in minutes: same layout
(``train/<class>/``, ``test/<class>/``), same files, fewer of them, nothing copied.
"""

from __future__ import annotations

from pathlib import Path


def subset_folder(source: Path, target: Path, per_class: dict[str, int]) -> Path:
    """Link the first ``per_class[split]`` images (sorted names) of every class of each split.

    An existing ``target`` with the same links is reused; a different one is rebuilt.
    """
    source, target = Path(source).resolve(), Path(target)
    for split, count in per_class.items():
        for class_dir in sorted(p for p in (source / split).iterdir() if p.is_dir()):
            wanted = sorted(class_dir.glob("*.jpg"))[:count]
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
