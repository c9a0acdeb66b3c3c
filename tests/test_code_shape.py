"""The package's shape: no function longer than a screen and a half, measured with ``ast``."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 80


def _long_functions(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            length = node.end_lineno - first + 1
            if length > MAX_LINES:
                found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({length} lines)")
    return found


def test_measure_counts_decorators_and_body(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("@staticmethod\ndef f():\n" + "    x = 1\n" * (MAX_LINES - 1) + "\ndef g():\n    pass\n")
    assert _long_functions(src, tmp_path) == [f"m.py:2 f ({MAX_LINES + 1} lines)"]


def test_no_function_in_helpers_is_longer_than_80_lines():
    files = sorted((ROOT / "helpers").rglob("*.py"))
    assert len(files) > 20, "the helpers package was not found"
    long = [entry for path in files for entry in _long_functions(path)]
    assert not long, f"functions over {MAX_LINES} lines (split them): " + "; ".join(long)


def test_contributing_lists_every_module():
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    layout = text[text.index("## Layout") : text.index("## A chapter")]
    names = {p.name for p in (ROOT / "helpers").rglob("*.py")}
    missing = sorted(n for n in names if n not in layout)
    assert not missing, f"CONTRIBUTING.md's layout does not list {missing}"
