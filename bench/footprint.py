#!/usr/bin/env python3
"""Code and data size of the portable core on RV32IMAC (the ESP32-C3's ISA) at -Os.

Builds the rv32 objects of every core module (firmware/host/rv32/check.sh: it also runs the
socket-free unit tests under qemu) unless --no-build, then prints text/data/bss per object
(`riscv64-unknown-elf-size`, Berkeley format: text includes read-only data) and the total.
Object sizes are before linking: the linker's --gc-sections can only make them smaller, and
mbedTLS, libc and the ESP-IDF port are not counted.

Run: python3 bench/footprint.py [--build-dir DIR] [--no-build] [--markdown]
Build dir: ${HIL_HOST_BUILD_DIR:-firmware/host/build}/rv32 (the same as rv32/check.sh).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECK_SH = ROOT / "firmware" / "host" / "rv32" / "check.sh"
SIZE = "riscv64-unknown-elf-size"


def rv32_build_dir(arg: str | None = None) -> Path:
    """The rv32 build directory: --build-dir, else ${HIL_HOST_BUILD_DIR}/rv32 as check.sh uses."""
    if arg:
        return Path(arg).resolve()
    root = os.environ.get("HIL_HOST_BUILD_DIR") or str(ROOT / "firmware" / "host" / "build")
    return Path(root).resolve() / "rv32"


def ensure_build(build: Path) -> None:
    """Run firmware/host/rv32/check.sh into `build` (builds core, tests, mbedTLS; runs tests)."""
    if build.name != "rv32":
        raise SystemExit(f"footprint: {build}: check.sh builds into <root>/rv32; pass such a "
                         "directory or --no-build")
    env = dict(os.environ, HIL_HOST_BUILD_DIR=str(build.parent))
    proc = subprocess.run([str(CHECK_SH)], env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"footprint: {CHECK_SH.relative_to(ROOT)} failed (exit "
                         f"{proc.returncode}); fix the rv32 build first")


def build_opt(build: Path) -> str:
    """RV32_OPT recorded in the build's CMake cache ("" when unknown)."""
    cache = build / "CMakeCache.txt"
    if not cache.is_file():
        return ""
    m = re.search(r"^RV32_OPT:STRING=(.*)$", cache.read_text(), re.MULTILINE)
    return m.group(1).strip() if m else ""


def core_files(build: Path, suffix: str) -> list[Path]:
    """Files with this suffix (".obj", ".ci", ".su") that the compilation of each core module
    left, by module name; files of sources that no longer exist are skipped (CMake mirrors
    each source's absolute path under the target's directory)."""
    top = build / "CMakeFiles" / "agent_objs.dir"
    found = [p for p in top.rglob(f"*.c{suffix}")
             if Path("/", str(p.relative_to(top)).removesuffix(suffix)).is_file()]
    if not found:
        raise SystemExit(f"footprint: no core objects under {top}; run without --no-build "
                         "(or firmware/host/rv32/check.sh) first")
    return sorted(found, key=lambda p: p.name)


@dataclass(frozen=True)
class Size:
    name: str
    text: int
    data: int
    bss: int

    @property
    def total(self) -> int:
        return self.text + self.data + self.bss


def sizes(objs: list[Path]) -> list[Size]:
    if shutil.which(SIZE) is None:
        raise SystemExit(f"footprint: {SIZE} not found: apt-get install gcc-riscv64-unknown-elf")
    out = subprocess.run([SIZE, "-B", *map(str, objs)], capture_output=True, text=True,
                         check=True).stdout
    rows: list[Size] = []
    for line in out.splitlines()[1:]:
        text, data, bss, _dec, _hex, fname = line.split(None, 5)
        rows.append(Size(Path(fname).name.removesuffix(".obj"), int(text), int(data), int(bss)))
    return rows


def render(rows: list[Size], markdown: bool) -> str:
    total = Size("total", sum(r.text for r in rows), sum(r.data for r in rows),
                 sum(r.bss for r in rows))
    if markdown:
        lines = ["| object | text | data | bss |", "|---|--:|--:|--:|"]
        lines += [f"| {r.name} | {r.text} | {r.data} | {r.bss} |" for r in rows]
        lines.append(f"| **total** | **{total.text}** | **{total.data}** | **{total.bss}** |")
        return "\n".join(lines)
    lines = [f"{'object':<16}{'text':>8}{'data':>8}{'bss':>8}"]
    lines += [f"{r.name:<16}{r.text:>8}{r.data:>8}{r.bss:>8}" for r in rows]
    lines.append("-" * 40)
    lines.append(f"{'total':<16}{total.text:>8}{total.data:>8}{total.bss:>8}"
                 f"   ({total.total / 1024:.1f} KiB)")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build-dir", help="rv32 build directory (default: as check.sh)")
    ap.add_argument("--no-build", action="store_true",
                    help="use the objects already built, do not run check.sh")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = ap.parse_args()
    build = rv32_build_dir(args.build_dir)
    if not args.no_build:
        ensure_build(build)
    opt = build_opt(build)
    if opt != "-Os":
        print(f"footprint: note: {build} was built with {opt or 'unknown flags'}, not -Os",
              file=sys.stderr)
    print(render(sizes(core_files(build, ".obj")), args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
