"""resmo's units import only what docs/architecture.md's "Layers" table lets them, without
cycles (function-level imports included), and Lightning only where the table says so.

A unit is a package of ``src/resmo/`` (its subpackages included) or a top-level module,
named ``resmo.<name>``; ``resmo`` itself is the package's ``__init__.py``."""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src"
ARCHITECTURE = SOURCE.parent / "docs" / "architecture.md"
#: top-level module names of Lightning
LIGHTNING = ("lightning", "lightning_fabric", "pytorch_lightning")
#: the columns of the "Layers" table that the checks read
UNIT, MAY_IMPORT, USES_LIGHTNING = "unit", "may import", "Lightning"


def unit(module: str) -> str:
    """The unit a module belongs to: ``resmo.train.loop`` -> ``resmo.train``, ``resmo`` -> ``resmo``."""
    return ".".join(module.split(".")[:2])


def units(source: Path = SOURCE) -> dict[str, str]:
    """``{unit: its path under src/}`` for ``resmo``, every package and every top-level module."""
    found = {"resmo": "resmo/__init__.py"}
    for path in sorted((source / "resmo").iterdir()):
        if path.is_dir() and any(path.rglob("*.py")):
            found[f"resmo.{path.name}"] = f"resmo/{path.name}/"
        elif path.suffix == ".py" and path.name != "__init__.py":
            found[f"resmo.{path.stem}"] = f"resmo/{path.name}"
    return found


def imported_modules(node: ast.AST, package: str, source: Path) -> list[str]:
    """The absolute module names that an import statement inside ``package`` loads:
    ``from resmo import ctrl_c`` -> ``resmo.ctrl_c``, ``from resmo import __version__`` ->
    ``resmo``, ``from ..losses import x`` -> ``resmo.losses``."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        parts = package.split(".")
        base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
    if base != "resmo":
        return [base]
    root = source / "resmo"
    return [f"resmo.{alias.name}" if (root / alias.name).is_dir() or (root / f"{alias.name}.py").is_file()
            else "resmo" for alias in node.names]


@dataclass
class Imports:
    """Every import of resmo's files, by unit: ``{unit: {imported unit: ["src/resmo/x.py:12", ...]}}``
    for the other units, ``{unit: ["src/resmo/x.py:3", ...]}`` for Lightning."""

    edges: dict[str, dict[str, list[str]]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(list)))
    lightning: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


def read_imports(source: Path = SOURCE) -> Imports:
    found = Imports()
    for path in sorted((source / "resmo").rglob("*.py")):
        module = ".".join(path.relative_to(source).with_suffix("").parts).removesuffix(".__init__")
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        where = f"{source.name}/{path.relative_to(source).as_posix()}"
        for node in ast.walk(ast.parse(path.read_text())):
            for name in imported_modules(node, package, source):
                if name.split(".")[0] in LIGHTNING:
                    found.lightning[unit(module)].append(f"{where}:{node.lineno}")
                elif (name == "resmo" or name.startswith("resmo.")) and unit(name) != unit(module):
                    found.edges[unit(module)][unit(name)].append(f"{where}:{node.lineno}")
    return found


def package_imports(source: Path = SOURCE) -> dict[str, dict[str, list[str]]]:
    """``{unit: {imported unit: ["file:line", ...]}}`` over every import statement."""
    return read_imports(source).edges


@dataclass
class Row:
    line: int  # in the document
    may_import: set[str]
    lightning: bool


def read_layers(document: Path = ARCHITECTURE) -> dict[str, Row]:
    """The "Layers" table: ``{unit: Row}``. Raises ``ValueError`` naming the line of a
    malformed row."""
    lines = document.read_text().splitlines()
    name = document.name
    try:
        start = lines.index("## Layers")
        header_at = next(i for i in range(start, len(lines)) if lines[i].startswith("|"))
    except (ValueError, StopIteration):
        raise ValueError(f"{name}: no table under a '## Layers' heading") from None
    header = [cell.strip() for cell in lines[header_at].strip().strip("|").split("|")]
    missing = [column for column in (UNIT, MAY_IMPORT, USES_LIGHTNING) if column not in header]
    if missing:
        raise ValueError(f"{name}:{header_at + 1}: the Layers table has no column {missing} (columns: {header})")
    rows: dict[str, Row] = {}
    for number in range(header_at + 2, len(lines)):  # after the |---| line
        text = lines[number]
        if not text.startswith("|"):
            break
        cells = dict(zip(header, (cell.strip() for cell in text.strip().strip("|").split("|")), strict=False))
        at = f"{name}:{number + 1}"
        named = re.fullmatch(r"`(resmo(?:\.\w+)?)`", cells.get(UNIT, ""))
        if not named:
            raise ValueError(f"{at}: the {UNIT!r} cell must be one name like `resmo.train`, got {cells.get(UNIT)!r}")
        cell = cells.get(MAY_IMPORT, "")
        listed = re.findall(r"`([^`]*)`", cell)
        if cell != "—" and (not listed or re.sub(r"`[^`]*`", "", cell).replace(",", "").strip()):
            raise ValueError(f"{at}: the {MAY_IMPORT!r} cell must be backticked unit names separated by commas, "
                             f"or — for none; got {cell!r}")
        wrong = [item for item in listed if not re.fullmatch(r"resmo(\.\w+)?", item)]
        if wrong:
            raise ValueError(f"{at}: {wrong} in {MAY_IMPORT!r} are not unit names (`resmo` or `resmo.<name>`)")
        flag = cells.get(USES_LIGHTNING, "")
        if flag not in ("yes", "no"):
            raise ValueError(f"{at}: the {USES_LIGHTNING!r} cell must be yes or no, got {flag!r}")
        if named.group(1) in rows:
            raise ValueError(f"{at}: a second row for `{named.group(1)}` (first: line {rows[named.group(1)].line})")
        rows[named.group(1)] = Row(number + 1, set(listed), flag == "yes")
    return rows


def layer_problems(source: Path = SOURCE, document: Path = ARCHITECTURE) -> list[str]:
    """Every disagreement between the table and the code, each saying what to edit."""
    rows, present, imports = read_layers(document), units(source), read_imports(source)
    doc = f"{document.name}, table 'Layers'"
    problems = []
    for name in sorted(present.keys() - rows.keys()):
        needs = ", ".join(f"`{target}`" for target in sorted(imports.edges.get(name, {}))) or "—"
        problems.append(f"{doc}: add a row for `{name}` ({source.name}/{present[name]}) with may import: {needs}; "
                        f"Lightning: {'yes' if imports.lightning.get(name) else 'no'} (below the rows it lists)")
    for name in sorted(rows.keys() - present.keys()):
        problems.append(f"{doc}, line {rows[name].line}: remove the row `{name}`: "
                        f"no {source.name}/resmo/{name.removeprefix('resmo.')}/ nor .py file")
    for name in [name for name in rows if name in present]:  # in the order of the table
        row, made = rows[name], imports.edges.get(name, {})
        edit = f"the row `{name}` ({doc}, line {row.line})"
        for target in sorted(made.keys() - row.may_import):
            places = made[target]
            problems.append(f"{places[0]}: {name} imports {target}, which {edit} does not list; add `{target}` "
                            f"to its may import column, or remove the import"
                            + (f" (also at {', '.join(places[1:4])}{', ...' if len(places) > 4 else ''})"
                               if len(places) > 1 else ""))
        for target in sorted(row.may_import - made.keys()):
            problems.append(f"{edit} lists `{target}`, which no file of {name} imports; remove it from may import")
        for target in sorted(t for t in row.may_import if t in rows and rows[t].line > row.line):
            problems.append(f"{edit} lists `{target}`, whose row (line {rows[target].line}) comes after it; "
                            f"move the row `{target}` above it (rows go from the bottom layer up)")
        uses = imports.lightning.get(name, [])
        if uses and not row.lightning:
            problems.append(f"{uses[0]}: {name} imports Lightning, which {edit} does not allow (Lightning: no); "
                            "move the code to a unit marked yes, or mark this row yes")
        if row.lightning and not uses:
            problems.append(f"{edit} says Lightning: yes, but no file of {name} imports it; make it no")
    return problems


def cycle(edges: dict[str, dict[str, list[str]]]) -> list[str] | None:
    """One cycle of layers (``[a, b, ..., a]``), or ``None``."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node], _ = "open", path.append(node)
        for nxt in sorted(edges.get(node, {})):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = "done"
        path.pop()
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_layers_table_of_architecture_md_matches_every_import():
    problems = layer_problems()
    assert problems == [], "docs/architecture.md and the imports disagree:\n" + "\n".join(problems)


LAYERS = """# Architecture

## Layers

| unit | one job | may import | Lightning |
|---|---|---|---|
| `resmo.low` | the bottom | — | no |
| `resmo.top` | on top | `resmo.low`, `resmo.gone` | no |
| `resmo.fit` | the loop | `resmo.low` | yes |
| `resmo` | public names | — | no |

## Next
"""


def write_tree(root: Path, files: dict[str, str], layers: str = LAYERS) -> tuple[Path, Path]:
    """``root/src/resmo/<files>`` and ``root/architecture.md``; returns (source, document)."""
    for name, text in files.items():
        (root / "src" / "resmo" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "src" / "resmo" / name).write_text(text)
    (root / "architecture.md").write_text(layers)
    return root / "src", root / "architecture.md"


def test_the_layer_check_names_the_file_line_the_row_and_what_to_edit(tmp_path):
    source, document = write_tree(tmp_path, {
        "__init__.py": "", "low.py": "import os\n",
        "top/__init__.py": "from resmo.low import x\n",
        "top/deep/run.py": "def f():\n    from resmo import fit, __version__\n",
        "fit.py": "import resmo.low\nimport torch\n",
        "new/__init__.py": "from ..top import y\nimport lightning.fabric\n",
    })
    assert layer_problems(source, document) == [
        "architecture.md, table 'Layers': add a row for `resmo.new` (src/resmo/new/) with may import: "
        "`resmo.top`; Lightning: yes (below the rows it lists)",
        "src/resmo/top/deep/run.py:2: resmo.top imports resmo, which the row `resmo.top` (architecture.md, "
        "table 'Layers', line 8) does not list; add `resmo` to its may import column, or remove the import",
        "src/resmo/top/deep/run.py:2: resmo.top imports resmo.fit, which the row `resmo.top` (architecture.md, "
        "table 'Layers', line 8) does not list; add `resmo.fit` to its may import column, or remove the import",
        "the row `resmo.top` (architecture.md, table 'Layers', line 8) lists `resmo.gone`, which no file of "
        "resmo.top imports; remove it from may import",
        "the row `resmo.fit` (architecture.md, table 'Layers', line 9) says Lightning: yes, but no file of "
        "resmo.fit imports it; make it no",
    ]
    (source / "resmo" / "low.py").write_text("def f():\n    from pytorch_lightning import Trainer\n")
    (source / "resmo" / "gone.py").write_text("")
    assert [p for p in layer_problems(source, document) if p.startswith("src/resmo/low.py")] == [
        "src/resmo/low.py:2: resmo.low imports Lightning, which the row `resmo.low` (architecture.md, table "
        "'Layers', line 7) does not allow (Lightning: no); move the code to a unit marked yes, or mark this "
        "row yes"]
    assert "architecture.md, table 'Layers': add a row for `resmo.gone` (src/resmo/gone.py) with may import: —; " \
           "Lightning: no (below the rows it lists)" in layer_problems(source, document)


def test_the_layer_check_sees_a_row_without_a_unit(tmp_path):
    source, document = write_tree(tmp_path, {"__init__.py": "", "low.py": "", "top.py": "import resmo.low\n"})
    assert layer_problems(source, document)[0] == (
        "architecture.md, table 'Layers', line 9: remove the row `resmo.fit`: no src/resmo/fit/ nor .py file")


def test_the_layer_check_sees_a_row_that_imports_a_row_below_it(tmp_path):
    layers = LAYERS.replace("`resmo.low`, `resmo.gone` | no", "`resmo.low`, `resmo.fit` | no")
    source, document = write_tree(tmp_path, {"__init__.py": "", "low.py": "", "fit.py": "import lightning\n",
                                             "top.py": "import resmo.low\nimport resmo.fit\n"}, layers)
    assert layer_problems(source, document) == [
        "the row `resmo.top` (architecture.md, table 'Layers', line 8) lists `resmo.fit`, whose row (line 9) "
        "comes after it; move the row `resmo.fit` above it (rows go from the bottom layer up)",
        "the row `resmo.fit` (architecture.md, table 'Layers', line 9) lists `resmo.low`, which no file of "
        "resmo.fit imports; remove it from may import",
    ]


def test_a_malformed_row_of_the_layers_table_is_an_error_naming_its_line(tmp_path):
    for row, message in [
        ("| train/ | x | — | no |", "architecture.md:7: the 'unit' cell must be one name like `resmo.train`"),
        ("| `resmo.low` | x | config | no |", "architecture.md:7: the 'may import' cell must be backticked"),
        ("| `resmo.low` | x | `resmo.a`, and `resmo.b` | no |", "architecture.md:7: the 'may import' cell"),
        ("| `resmo.low` | x | `losses` | no |", "architecture.md:7: ['losses'] in 'may import' are not unit"),
        ("| `resmo.low` | x | — | maybe |", "architecture.md:7: the 'Lightning' cell must be yes or no"),
        ("| `resmo.top` | x | — | no |", "architecture.md:8: a second row for `resmo.top` (first: line 7)"),
    ]:
        layers = LAYERS.replace("| `resmo.low` | the bottom | — | no |", row)
        _, document = write_tree(tmp_path, {}, layers)
        with pytest.raises(ValueError) as error:
            read_layers(document)
        assert str(error.value).startswith(message), (row, str(error.value))


def test_no_import_cycle_between_resmo_packages():
    edges = package_imports()
    found = cycle(edges)
    where = [f"{a} -> {b}: {', '.join(edges[a][b][:3])}" for a, b in zip(found, found[1:], strict=False)] if found else []
    assert found is None, "import cycle: " + "; ".join(where)


def test_the_cycle_finder_sees_a_cycle_made_by_a_function_level_import(tmp_path):
    package = tmp_path / "resmo"
    for name in ("a", "b"):
        (package / name).mkdir(parents=True)
        (package / name / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "a" / "x.py").write_text("from resmo.b import y\n")
    (package / "b" / "y.py").write_text("def f():\n    from resmo.a.x import g\n")
    assert cycle(package_imports(tmp_path)) == ["resmo.a", "resmo.b", "resmo.a"]
    (package / "b" / "y.py").write_text("def f():\n    pass\n")
    assert cycle(package_imports(tmp_path)) is None


def lightning_uses(source: Path = SOURCE) -> list[str]:
    """``file:line`` of every subclass of a Lightning class and every ``_``-prefixed name
    imported from or read off Lightning (a module, or an object made by a Lightning class)."""
    found = []
    for path in sorted((source / "resmo").rglob("*.py")):
        tree = ast.parse(path.read_text())
        lightning = set()  # names bound to Lightning modules, classes and functions
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in LIGHTNING:
                lightning |= {alias.asname or alias.name for alias in node.names}
                found += [f"{path.name}:{node.lineno}" for alias in node.names if alias.name.startswith("_")]
                found += [f"{path.name}:{node.lineno}" for part in (node.module or "").split(".") if part.startswith("_")]
            elif isinstance(node, ast.Import):
                lightning |= {alias.asname or alias.name for alias in node.names if alias.name.split(".")[0] in LIGHTNING}
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases = {ast.unparse(base).split(".")[0] for base in node.bases}
                found += [f"{path.name}:{node.lineno}"] if bases & lightning else []
            elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                chain = ast.unparse(node)
                if chain.split(".")[0] in lightning or ".fabric." in f".{chain}" or ".strategy." in chain:
                    found.append(f"{path.name}:{node.lineno}")
    return found


def test_no_subclass_or_private_member_of_lightning():
    assert lightning_uses() == []


def test_the_lightning_check_sees_a_subclass_and_a_private_member(tmp_path):
    package = tmp_path / "resmo"
    package.mkdir()
    (package / "a.py").write_text("import lightning.pytorch as pl\nclass M(pl.LightningModule):\n    pass\n")
    (package / "b.py").write_text("from lightning.fabric import Fabric\nx = Fabric()\ny = x.strategy._launcher\n")
    (package / "c.py").write_text("from lightning.fabric.utilities.types import _PATH\n")
    (package / "d.py").write_text("from lightning.fabric import Fabric\nfabric = Fabric()\nfabric.strategy.precision\n")
    assert lightning_uses(tmp_path) == ["a.py:2", "b.py:3", "c.py:1"]
