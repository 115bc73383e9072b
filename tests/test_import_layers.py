"""resmo's packages import each other without cycles (function-level imports included)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src"


def unit(module: str) -> str:
    """The layer a module belongs to: ``resmo.train.module`` -> ``resmo.train``."""
    return ".".join(module.split(".")[:2])


def package_imports(source: Path = SOURCE) -> dict[str, dict[str, list[str]]]:
    """``{layer: {imported layer: ["file:line", ...]}}`` over every import statement."""
    edges: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for path in sorted((source / "resmo").rglob("*.py")):
        module = ".".join(path.relative_to(source).with_suffix("").parts).removesuffix(".__init__")
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    names = [".".join(base + ([node.module] if node.module else []))]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name.startswith("resmo.") and unit(name) != unit(module):
                    edges[unit(module)][unit(name)].append(f"{path.relative_to(source)}:{node.lineno}")
    return edges


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


def test_the_training_free_layers_do_not_import_lightning():
    """The builder, methods, losses, evaluation and transfer run without Lightning (and so can be
    shared by training, evaluation and other people's loops)."""
    for layer in ("builder", "methods", "losses", "eval", "data", "nn", "momentum", "backbones", "transfer",
                  "optim"):
        path = SOURCE / "resmo" / layer
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]
        for file in files:
            tree = ast.parse(file.read_text())
            for node in ast.walk(tree):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                    [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                assert not any(name.split(".")[0] == "lightning" for name in names), f"{file}:{node.lineno}"


def lightning_uses(source: Path = SOURCE) -> list[str]:
    """``file:line`` of every subclass of a Lightning class and every ``_``-prefixed name
    imported from or read off Lightning (a module, or an object made by a Lightning class)."""
    found = []
    for path in sorted((source / "resmo").rglob("*.py")):
        tree = ast.parse(path.read_text())
        lightning = set()  # names bound to Lightning modules, classes and functions
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "lightning":
                lightning |= {alias.asname or alias.name for alias in node.names}
                found += [f"{path.name}:{node.lineno}" for alias in node.names if alias.name.startswith("_")]
                found += [f"{path.name}:{node.lineno}" for part in (node.module or "").split(".") if part.startswith("_")]
            elif isinstance(node, ast.Import):
                lightning |= {alias.asname or alias.name for alias in node.names if alias.name.split(".")[0] == "lightning"}
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
