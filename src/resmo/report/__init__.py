"""Reports of runs: curves (matplotlib, Agg), tables, self-contained HTML pages."""

from resmo.report.build import ReportFiles, build_report

__all__ = ["ReportFiles", "build_report"]
