"""Re-runs of the quality protocol on later code that reproduced the committed quality results.

Each entry is (date, commit, what): the smoke protocol recomputed from scratch at ``commit`` gave
the committed numbers, so quality results made by older code still describe the code up to that
commit (``render_docs.quality_freshness`` judges them by the last entry when it comes after their
own commits). The page lists them after the smoke table.
"""

#: (date, commit, what was re-checked and found), oldest first
QUALITY_RECHECKS = [
    ("2026-12-02", "1abe811", "`python benchmarks/quality_cifar10.py --smoke` with `--results-dir` and "
     "`--work-dir` in empty folders recomputed every smoke run from scratch and gave exactly the committed "
     "numbers for all 19 runs; the full protocol's runs go through the same code paths (views, AdamW, "
     "MoCo v3 / BYOL, the training loop), so its table of the time (runs of 2026-11-28, since re-run at "
     "`c4d1e4e`) described that code too"),
    ("2026-12-02", "1e5cd60", "the smoke protocol recomputed from scratch in empty folders again gave exactly "
     "the committed numbers for all 19 runs (three times: at ffb46bf, 4942ac6 and 1e5cd60; the smoke table above "
     "now holds the last runs, with their commit)"),
    ("2026-12-02", "e93e266", "after the declarative view spec, the pydantic config layer and DenseCL's changes to the "
     "method base class, the smoke protocol recomputed from scratch gave exactly the committed numbers for all 19 "
     "runs again (the smoke table above holds these runs; their working tree differed from e93e266 only in the "
     "README, the command line's help and tests)"),
    ("2026-12-02", "788c9ec", "after the training loop moved from Lightning's Trainer to the explicit loop on "
     "Lightning Fabric (resmo.train.loop), the smoke protocol recomputed from scratch gave exactly the committed "
     "numbers for all 19 runs again"),
    ("2026-12-02", "7dbad81", "after the loop's review fixes (learning rate logged for its own step, images/s of "
     "a resumed epoch, decisions taken by all processes together), the smoke protocol recomputed from scratch gave "
     "exactly the committed numbers for all 19 runs again (the smoke table above holds these runs)"),
    ("2026-12-03", "4f4726c", "on a new machine, the smoke protocol recomputed from scratch at `7dbad81` (the re-check "
     "before) and at `4f4726c` gave identical numbers for all 19 runs; both differ from the numbers the earlier "
     "machine gave in rounding only (intra gaps in the fourth digit, kNN and linear top-1 by 0.5 points, one "
     "image of 200), and so do the two LightlySSL runs, which resmo's code does not train: the machine changed, "
     "not what the code computes (the smoke table above holds the `4f4726c` runs)"),
]
