"""The recipes that ship with resmo: ``<dataset>/<method>.yaml`` files inside this package.

A recipe is named ``<dataset>/<method>`` (``cifar10/mocov3``; ``cifar10/mocov3.yaml`` is
the same recipe) and read with :mod:`importlib.resources`, so it works from an installed
wheel as well as from the repository (``resmo pretrain --config cifar10/mocov3``).

Every recipe opens with comment lines; the one that starts with ``# Compare with:``, with
its indented continuation lines (``#   ...``), says which published figure the recipe is
meant to reproduce. That figure is written once, in the reference table
(``references.yaml``, ``recipes.<name>.figure``, whose source ids such as ``S26`` name the
files in ``sources``): :func:`reference_figure` reads it with the ids written out as
repository and path, :func:`catalogue` (``resmo recipes``) lists it, and the comment is its
copy, :func:`compare_with_lines` (a test fails when a recipe's comment says anything else;
the config schema rejects unknown keys, so it cannot be a YAML field).
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

SUFFIX = ".yaml"
COMPARE_PREFIX = "# Compare with:"
CONTINUATION_PREFIX = "#  "
REFERENCES = "references.yaml"
#: Width the ``# Compare with:`` paragraph of a recipe is wrapped to.
COMMENT_WIDTH = 92
#: A source id of the reference table (``S26``, ``L1``, ``W1``).
SOURCE_ID = re.compile(r"\b[A-Z][0-9]+\b")


@dataclass(frozen=True)
class RecipeInfo:
    """One shipped recipe, as ``resmo recipes`` lists it."""

    name: str
    method: str
    backbone: str
    dataset: str
    reproduces: str


def _root() -> Traversable:
    return files(__name__)


def recipe_names() -> list[str]:
    """Every shipped recipe name (``<dataset>/<method>``), sorted."""
    names = [
        f"{folder.name}/{item.name[: -len(SUFFIX)]}"
        for folder in _root().iterdir()
        if folder.is_dir() and not folder.name.startswith(("_", "."))
        for item in folder.iterdir()
        if item.is_file() and item.name.endswith(SUFFIX)
    ]
    return sorted(names)


def find_recipe(value: str) -> str | None:
    """The recipe name ``value`` stands for (``cifar10/mocov3`` or ``cifar10/mocov3.yaml``,
    any case), or ``None`` if no shipped recipe has that name."""
    name = str(value).strip().replace("\\", "/").lower().removesuffix(SUFFIX)
    return name if name in recipe_names() else None


def suggest_recipe(value: str) -> str | None:
    """A recipe named by the last two parts of the path ``value`` (the old
    ``configs/cifar10/mocov3.yaml`` -> ``cifar10/mocov3``), or ``None``."""
    parts = str(value).strip().replace("\\", "/").split("/")
    return find_recipe("/".join(parts[-2:])) if len(parts) > 2 else None


def read_recipe(name: str) -> str:
    """The YAML text of the shipped recipe ``name`` (see :func:`find_recipe`)."""
    found = find_recipe(name)
    if found is None:
        raise ValueError(f"no shipped recipe named {name!r}; recipes: {', '.join(recipe_names())}")
    dataset, method = found.split("/")
    return (_root() / dataset / f"{method}{SUFFIX}").read_text(encoding="utf-8")


def reproduces(text: str) -> str:
    """The ``# Compare with:`` paragraph of a recipe's header comment as one line
    (``""`` when there is none). Continuation lines start with ``#`` and two spaces."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.startswith(COMPARE_PREFIX):
            parts = [line[len(COMPARE_PREFIX):]]
            for following in lines[index + 1:]:
                if not following.startswith(CONTINUATION_PREFIX):
                    break
                parts.append(following[1:])
            return " ".join(" ".join(parts).split())
    return ""


@cache
def reference_table() -> dict:
    """``references.yaml``: ``{"sources": {id: {repo, path, commit}}, "recipes": {name: {figure, ...}}}``."""
    return yaml.safe_load((_root() / REFERENCES).read_text(encoding="utf-8")) or {}


def reference_figure(name: str) -> str:
    """The published figure the reference table gives for the shipped recipe ``name``, its
    source ids written out as ``repository path`` (``""`` when the table has no entry)."""
    table = reference_table()
    entry = table.get("recipes", {}).get(find_recipe(name) or name)
    if not entry:
        return ""
    sources = table.get("sources", {})

    def written_out(match: re.Match) -> str:
        source = sources.get(match.group())
        return f"{source['repo']} {source['path']}" if source else match.group()

    return SOURCE_ID.sub(written_out, " ".join(str(entry.get("figure", "")).split()))


def compare_with_lines(name: str) -> list[str]:
    """The ``# Compare with:`` comment lines of recipe ``name``: :func:`reference_figure`
    wrapped to :data:`COMMENT_WIDTH`, continuation lines indented (``#   ``)."""
    return textwrap.wrap(reference_figure(name), width=COMMENT_WIDTH, initial_indent=f"{COMPARE_PREFIX} ",
                         subsequent_indent="#   ", break_long_words=False, break_on_hyphens=False)


def recipe_info(name: str) -> RecipeInfo:
    """Name, method, backbone, dataset and reproduced figure (from the reference table, else
    the recipe's own comment) of the shipped recipe ``name``."""
    text = read_recipe(name)
    settings = yaml.safe_load(text) or {}
    found = find_recipe(name) or name
    return RecipeInfo(
        name=found,
        method=str(settings.get("method", "")),
        backbone=str(settings.get("backbone", "")),
        dataset=found.split("/")[0],
        reproduces=reference_figure(found) or reproduces(text),
    )


def catalogue() -> list[RecipeInfo]:
    """:func:`recipe_info` of every shipped recipe, sorted by name."""
    return [recipe_info(name) for name in recipe_names()]
