"""The report of a run: metrics tables and figures (Markdown + HTML)."""

from __future__ import annotations

from xsomo.report.report import Report, open_prediction, write_report

__all__ = ["Report", "open_prediction", "write_report"]
