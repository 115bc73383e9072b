"""Every shipped recipe against the reference files it cites, setting by setting
(src/resmo/recipes/references.yaml; intended differences in deviations.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest

import resmo.fidelity.references as references_module
from resmo.fidelity.references import compare, deviations, references, render, same
from resmo.recipes import recipe_names

RECIPES = sorted(references()["recipes"])
DOCS = Path(__file__).resolve().parents[2] / "docs" / "recipes.md"


def test_every_shipped_recipe_has_a_reference_entry():
    assert RECIPES == recipe_names() and len(RECIPES) == 17


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_runs_its_reference_setting_by_setting(recipe):
    rows = compare(recipe)
    assert len(rows) >= 45  # every result-deciding setting, views per view
    wrong = [f"{r.key}: resmo {r.resmo!r}, reference {r.reference!r} ({r.source})"
             for r in rows if r.status == "mismatch"]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_listed_deviation_is_a_real_difference_with_a_reason(recipe):
    settings = references()["recipes"][recipe]["settings"]
    rows = {row.key: row for row in compare(recipe)}
    for key, reason in deviations(recipe).items():
        assert key in settings, f"{recipe}: deviation {key} is not a reference setting"
        assert rows[key].status == "deviation", f"{recipe}: {key} no longer differs; remove it"
        assert len(reason.split()) >= 8


def test_a_changed_setting_is_caught(monkeypatch):
    real = references_module.load_config
    monkeypatch.setattr(references_module, "load_config",
                        lambda name: real(name, ["optimizer.lr=0.31", "data.views.min_scale=0.2"]))
    wrong = {row.key for row in compare("cifar10/mocov3") if row.status == "mismatch"}
    assert wrong == {"optimizer.lr", "views.0.min_scale", "views.1.min_scale"}


def test_values_compare_as_numbers_booleans_and_lists():
    assert same(1e-6, 1.0e-6) and same(10, 10.0) and same([0.08, 1], (0.08, 1.0))
    assert not same(True, 1.5) and not same(0.2, 0.08) and not same([1, 2], [1])


def test_docs_recipes_is_the_rendering():
    assert DOCS.read_text() == render(), "run: python -m resmo.fidelity.references > docs/recipes.md"
