"""rig/ reads in the order data flows (rig.STAGES): a module imports only from its own stage or
lower ones. Every import counts: at the top, inside a function, under TYPE_CHECKING."""

from __future__ import annotations

import ast
from pathlib import Path

from rig import STAGES

RIG = Path(__file__).resolve().parents[2] / "rig"


def module_name(path: Path, root: Path = RIG) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.Module, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, module) of every import in the tree, relative ones made absolute."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")
                package = package if is_package else package[:-1]
                anchor = package[:len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from rig import boards` imports rig.boards
            names = [f"{base}.{a.name}" for a in node.names] if base == "rig" else [base]
            found += [(node.lineno, name) for name in names]
    return found


def stage(module: str) -> int | None:
    """The index of a rig module's stage; None for what is not a stage (rig itself, outside)."""
    parts = module.split(".")
    if parts[0] != "rig" or len(parts) < 2:
        return None
    assert parts[1] in STAGES, f"rig.{parts[1]} is in no stage: add it to rig.STAGES"
    return STAGES.index(parts[1])


def upward_imports(root: Path = RIG) -> list[str]:
    problems: list[str] = []
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        own = stage(module)
        if own is None:
            continue
        tree = ast.parse(path.read_text(), str(path))
        for line, target in sorted(imported(tree, module, path.name == "__init__.py")):
            theirs = stage(target)
            if theirs is not None and theirs > own:
                problems.append(f"{path.relative_to(root.parent)}:{line}: {module} "
                                f"({STAGES[own]}) imports {target} ({STAGES[theirs]})")
    return problems


def test_no_module_imports_from_a_later_stage() -> None:
    problems = upward_imports()
    assert not problems, ("imports against the flow (rig.STAGES, lowest first):\n" +
                          "\n".join(problems))


def test_every_folder_and_module_of_rig_is_a_stage() -> None:
    tops = {p.stem for p in RIG.iterdir()
            if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()}
    assert tops == set(STAGES)


def test_an_upward_import_is_found_wherever_it_hides(tmp_path: Path) -> None:
    """The walk itself: a function-local import, a TYPE_CHECKING one and a relative one."""
    rig = tmp_path / "rig"
    (rig / "boards").mkdir(parents=True)
    (rig / "__init__.py").write_text("")
    (rig / "boards" / "__init__.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from rig.device.console import Console\n")
    (rig / "boards" / "esp32.py").write_text(
        "from rig.config import Board\n"
        "def f() -> None:\n    from rig import cli\n"
        "from ..report import summary\n")
    assert upward_imports(rig) == [
        "rig/boards/__init__.py:3: rig.boards (boards) imports rig.device.console (device)",
        "rig/boards/esp32.py:3: rig.boards.esp32 (boards) imports rig.cli (cli)",
        "rig/boards/esp32.py:4: rig.boards.esp32 (boards) imports rig.report (report)",
    ]
