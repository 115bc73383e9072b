"""The page template of docs/benchmarks.md and the helpers that fill its fragments, shared by
the modules that write its sections (``render_docs.py``, ``docs_preregistered.py``)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.doc_template import DocTemplate

TEMPLATE = DocTemplate(Path(__file__).resolve().parent / "templates" / "benchmarks.md")


def block(name: str, /, **values) -> list[str]:
    """The template's fragment ``name`` filled with ``values``, as lines, then a blank line."""
    return TEMPLATE.fill(name, **values).split("\n") + [""]


def sentence(name: str, /, **values) -> str:
    """The template's one-line fragment ``name`` filled with ``values``."""
    return TEMPLATE.fill(name, **values)


def p_number(p: float) -> str:
    """A p value for the docs: three decimals, ``< 0.001`` below that."""
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def p_text(p: float) -> str:
    """``= 0.032`` or ``< 0.001``: what follows ``p`` in a sentence."""
    number = p_number(p)
    return number if number.startswith("<") else f"= {number}"
