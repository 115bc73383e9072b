"""A Markdown template cut into named fragments, each filled with :class:`string.Template`.

A line ``<!-- name -->`` starts the fragment ``name``, which runs to the next such line; the
blank lines around a fragment are not part of it, and text before the first fragment is a note
for the reader of the template. Placeholders are ``$name`` / ``${name}`` (``$$`` is a dollar
sign); every placeholder of a fragment must be given a value, and every value must be a
placeholder of the fragment, so a template and its script cannot drift apart silently.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

MARKER = re.compile(r"^<!-- ([a-z0-9_.]+) -->$", flags=re.MULTILINE)


class DocTemplate:
    """The fragments of the template at ``path``."""

    def __init__(self, path: Path):
        text = Path(path).read_text()
        parts = MARKER.split(text)  # [note, name, body, name, body, ...]
        self.path = Path(path)
        self.fragments: dict[str, Template] = {}
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            if name in self.fragments:
                raise ValueError(f"{path}: fragment {name!r} appears twice")
            self.fragments[name] = Template(body.strip("\n"))

    def fill(self, name: str, /, **values: object) -> str:
        """Fragment ``name`` with its placeholders replaced by ``values`` (``str()`` of each; a
        placeholder may itself be called ``name``)."""
        if name not in self.fragments:
            raise KeyError(f"{self.path}: no fragment {name!r}")
        template = self.fragments[name]
        wanted = {match["named"] or match["braced"] for match in template.pattern.finditer(template.template)
                  if match["named"] or match["braced"]}
        if wanted != set(values):
            raise KeyError(f"{self.path}: fragment {name!r} takes {sorted(wanted)}, given {sorted(values)}")
        return template.substitute({key: str(value) for key, value in values.items()})
