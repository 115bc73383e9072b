"""Recipe fidelity: each shipped recipe (resmo.recipes) against the reference file it cites.

- :mod:`~resmo.fidelity.resolved`: what a recipe really runs, setting by setting (the
  recipe over the defaults, the method built on the ``meta`` device, the views);
- :mod:`~resmo.fidelity.references`: the comparison with ``recipes/references.yaml`` and
  ``recipes/deviations.yaml`` and its table, ``python -m resmo.fidelity.references > docs/recipes.md``.
"""
