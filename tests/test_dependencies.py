"""The base install (``pip install -e .``) carries what every ``resmo`` command imports.

Every third-party module imported anywhere under ``src/resmo`` (at the top of a file or
inside a function: the AST of every ``.py`` file is walked) must come from a distribution in
``[project].dependencies``, or from a dependency of one of them named in ``TRANSITIVE`` (and
checked against that distribution's installed metadata). Optional packages (``lightly``)
may only be imported behind an ``except ImportError`` whose message names the extra.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

PROJECT = Path(__file__).resolve().parents[1]
SOURCE = PROJECT / "src" / "resmo"

#: top-level module -> the distribution that installs it
DISTRIBUTIONS = {
    "torch": "torch",
    "torchvision": "torchvision",
    "lightning": "lightning",
    "yaml": "pyyaml",
    "numpy": "numpy",
    "tensorboard": "tensorboard",
    "timm": "timm",
    "matplotlib": "matplotlib",
    "tqdm": "tqdm",
    "pydantic": "pydantic",
    "PIL": "pillow",
    "lightly": "lightly",
    "torchmetrics": "torchmetrics",
}
#: distributions resmo imports but does not declare -> the base dependency that requires them
TRANSITIVE = {"pillow": "torchvision"}
#: modules that only an extra installs -> that extra
OPTIONAL = {"lightly": "lightly", "torchmetrics": "detect"}
#: the extras the README documents; the aliases install nothing beyond the base
EXTRAS = ("dev", "lightly", "detect", "vit", "report")
ALIASES = ("vit", "report")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return normalise(re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1))


def project() -> dict:
    return tomllib.loads((PROJECT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def base_distributions() -> set[str]:
    return {requirement_name(r) for r in project()["dependencies"]}


def python_files() -> list[Path]:
    files = sorted(SOURCE.rglob("*.py"))
    assert len(files) > 50, files  # the walk found the package
    return files


def third_party_imports() -> dict[str, list[tuple[str, ast.AST, list[ast.AST]]]]:
    """module -> [(file, import node, enclosing nodes outermost first)] for every import of a
    module that is neither the standard library nor resmo itself."""
    found: dict[str, list] = {}

    def visit(node: ast.AST, parents: list[ast.AST], where: str) -> None:
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names and top != "resmo":
                found.setdefault(top, []).append((where, node, parents))
        for child in ast.iter_child_nodes(node):
            visit(child, [*parents, node], where)

    for path in python_files():
        visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), [], str(path.relative_to(PROJECT)))
    return found


IMPORTS = third_party_imports()


def test_every_third_party_import_has_a_known_distribution():
    unknown = {module: sorted({where for where, _, _ in uses})
               for module, uses in IMPORTS.items() if module not in DISTRIBUTIONS}
    assert not unknown, f"add these modules to DISTRIBUTIONS (and to the dependencies): {unknown}"
    assert {"torch", "timm", "matplotlib", "yaml"} <= set(IMPORTS)  # the walk sees lazy imports too


def test_the_base_install_provides_every_import_of_every_command():
    base = base_distributions()
    missing = {}
    for module, uses in IMPORTS.items():
        if module in OPTIONAL:
            continue
        distribution = DISTRIBUTIONS[module]
        if distribution in base or TRANSITIVE.get(distribution) in base:
            continue
        missing[module] = sorted({where for where, _, _ in uses})
    assert not missing, f"imported but not installed by `pip install -e .`: {missing}"


@pytest.mark.parametrize("distribution, parent", sorted(TRANSITIVE.items()))
def test_transitive_dependencies_come_with_their_parent(distribution, parent):
    assert parent in base_distributions()
    try:
        requires = importlib.metadata.requires(parent) or []
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{parent} is not installed")
    unconditional = [r for r in requires if "extra ==" not in r]
    assert distribution in {requirement_name(r) for r in unconditional}, unconditional


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    names = []
    for node in [handler.type] if not isinstance(handler.type, ast.Tuple) else handler.type.elts:
        if isinstance(node, ast.Name):
            names.append(node.id)
    return bool({"ImportError", "ModuleNotFoundError"} & set(names))


def test_optional_packages_are_imported_only_behind_a_one_line_error_naming_the_extra():
    for module, extra in OPTIONAL.items():
        for where, node, parents in IMPORTS.get(module, []):
            guards = [
                parent for i, parent in enumerate(parents)
                if isinstance(parent, ast.Try)
                and (parents[i + 1] if i + 1 < len(parents) else node) in parent.body
                and any(_catches_import_error(h) for h in parent.handlers)
            ]
            assert guards, f"{where}:{node.lineno}: `import {module}` without `except ImportError`"
            handlers = [ast.unparse(h) for g in guards for h in g.handlers if _catches_import_error(h)]
            assert any(f"resmo[{extra}]" in text for text in handlers), (
                f"{where}:{node.lineno}: the ImportError message must name pip install 'resmo[{extra}]'")


def test_lightly_stays_out_of_the_package():
    assert "lightly" not in IMPORTS, sorted({w for w, _, _ in IMPORTS["lightly"]})  # benchmarks/ and examples/ only


def test_extras_are_kept_and_the_aliases_add_nothing():
    extras = project()["optional-dependencies"]
    assert set(EXTRAS) <= set(extras)
    base = base_distributions()
    for alias in ALIASES:
        assert {requirement_name(r) for r in extras[alias]} <= base, alias
    assert {"pytest", "hypothesis", "ruff", "lightly"} <= {requirement_name(r) for r in extras["dev"]}
    assert {"timm", "matplotlib"} <= base


def test_the_readme_lists_every_extra():
    readme = (PROJECT / "README.md").read_text(encoding="utf-8")
    install = readme[readme.index("## Set-up"):readme.index("## The command line")]
    assert "pip install -e ." in install
    for extra in EXTRAS:
        assert f"`{extra}`" in install, extra
