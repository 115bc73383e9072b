"""resmo's benchmarks: each module with a command line runs from the repository root as
``python -m benchmarks.<name>``, writes its JSON under ``benchmarks/results/``, and
``python -m benchmarks.render_docs`` turns those results into docs/benchmarks.md."""
