"""No function (or method) in rig/ is longer than MAX_LINES, from its `def` line to its last
line, docstring included: a longer one does more than one thing; split it by what it does."""

from __future__ import annotations

import ast
from pathlib import Path

RIG = Path(__file__).resolve().parents[2] / "rig"
MAX_LINES = 80


def long_functions(root: Path = RIG, limit: int = MAX_LINES) -> list[str]:
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > limit:
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno}: "
                                 f"{node.name} has {length} lines")
    return found


def test_no_function_in_rig_is_over_80_lines() -> None:
    found = long_functions()
    assert not found, f"functions over {MAX_LINES} lines:\n" + "\n".join(found)


def test_a_long_function_is_found(tmp_path: Path) -> None:
    body = "".join(f"        x = {i}\n" for i in range(MAX_LINES))
    (tmp_path / "m.py").write_text(f"class C:\n    def long(self) -> None:\n{body}\n"
                                   f"def short() -> None:\n    pass\n")
    assert long_functions(tmp_path) == [f"{tmp_path.name}/m.py:2: long has 81 lines"]
