"""The package's shape: which layer may import which, and a pipeline that reads top to bottom."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rdx"

# The algorithm and data layers never import the layers that use them.
LOWER = ("rdx.models", "rdx.methods", "rdx.metrics", "rdx.data")
FORBIDDEN = ("rdx.training", "rdx.compare", "rdx.pipeline", "rdx.cli", "rdx.sinks")


def module_name(path: Path, root: Path = PACKAGE) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path = PACKAGE) -> list[tuple[int, str]]:
    """Every module a file imports (top level and inside functions), with the line, relative imports
    resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = module_name(path, root)
    package = name.rsplit(".", 1)[0] if path.name != "__init__.py" else name
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            found += [(node.lineno, f"{name}.{alias.name}") for alias in node.names]
    return found


def violations(root: Path = PACKAGE) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*.py")):
        if not module_name(path, root).startswith(LOWER):
            continue
        for line, imported in imported_modules(path, root):
            if any(
                imported == bad or imported.startswith(bad + ".") or imported.startswith(bad + "_")
                for bad in FORBIDDEN
            ):
                problems.append(f"{path.relative_to(root.parent)}:{line} imports {imported}")
    return problems


def test_lower_layers_never_import_the_layers_above():
    assert violations() == []


def test_the_import_rule_catches_a_violation(tmp_path):
    fake = tmp_path / "rdx"
    (fake / "models").mkdir(parents=True)
    (fake / "models" / "ok.py").write_text("from rdx.cache import FeatureCache\nimport numpy\n")
    (fake / "models" / "bad.py").write_text("def f():\n    from rdx.training.train import ensure_trained\n")
    (fake / "methods").mkdir()
    (fake / "methods" / "worse.py").write_text("from ..sinks import files\nimport rdx.compare\n")
    assert violations(fake) == [
        "rdx/methods/worse.py:1 imports rdx.sinks",
        "rdx/methods/worse.py:1 imports rdx.sinks.files",
        "rdx/methods/worse.py:2 imports rdx.compare",
        "rdx/models/bad.py:2 imports rdx.training.train",
        "rdx/models/bad.py:2 imports rdx.training.train.ensure_trained",
    ]


def function_lengths(path: Path) -> dict[str, int]:
    """Lines of each top-level function (docstring included) of a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.name: node.end_lineno - node.lineno + 1
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
    }


def test_the_comparison_reads_as_a_short_list_of_stages():
    lengths = function_lengths(PACKAGE / "pipeline.py")
    assert lengths["compare_models"] <= 40, lengths["compare_models"]
    assert max(lengths.values()) <= 60, lengths
    assert function_lengths(PACKAGE / "compare.py")["run_compare"] <= 40


@pytest.mark.parametrize("module", ["rdx.compare", "rdx.record", "rdx.runs"])
def test_the_finished_run_check_stays_light(module):
    """A rerun sweep skips finished jobs without importing torch, sklearn or matplotlib."""
    heavy = "('torch', 'sklearn', 'matplotlib')"
    code = f"import sys, {module}; print(sorted(m for m in {heavy} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
