"""Reports of runs: curves (matplotlib, Agg), tables, self-contained HTML pages.

``build_report`` and ``ReportFiles`` load on first use, so :mod:`resmo.report.numbers`
(number formatting shared with the CLI) imports without matplotlib.
"""

__all__ = ["ReportFiles", "build_report"]


def __getattr__(name: str):
    if name in __all__:
        from resmo.report import build

        return getattr(build, name)
    raise AttributeError(f"module 'resmo.report' has no attribute '{name}'")
