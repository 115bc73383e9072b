"""``resmo recipes [NAME]``: the shipped recipes, one line each, or one recipe's YAML text
(see :mod:`resmo.recipes`)."""

from __future__ import annotations

import argparse
import sys

COLUMNS = ("recipe", "method", "backbone", "dataset", "reproduces")


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "recipes", help="list the shipped recipes (names for resmo pretrain --config)",
        description="List every recipe that ships with resmo, one line each: name (pass it to "
        "resmo pretrain --config), method, backbone, dataset and the published figure it is "
        "meant to reproduce (the recipe's '# Compare with:' comment). With a NAME, print that "
        "recipe's YAML instead (e.g. to save an editable copy).",
    )
    parser.add_argument("name", nargs="?", metavar="NAME", help="a recipe to print, e.g. cifar10/mocov3")


def recipe_lines() -> list[str]:
    """A header and one aligned line per shipped recipe."""
    from resmo.recipes import catalogue

    rows = [COLUMNS] + [
        (info.name, info.method, info.backbone, info.dataset, info.reproduces or "-")
        for info in catalogue()
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS) - 1)]
    return ["  ".join([*(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)), row[-1]])
            for row in rows]


def run(args: argparse.Namespace) -> int:
    from resmo.recipes import find_recipe, read_recipe, recipe_names

    if args.name is None:
        print("\n".join(recipe_lines()))
        return 0
    name = find_recipe(args.name)
    if name is None:
        print(f"resmo recipes: error: no recipe named '{args.name}'; recipes: {', '.join(recipe_names())}",
              file=sys.stderr)
        return 2
    print(read_recipe(name), end="")
    return 0
