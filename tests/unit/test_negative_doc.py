"""The negative matrix's table (rig/cases/negative.py) and its generated doc agree; the cases
themselves run in rig/cases/test_negative.py."""

from __future__ import annotations

from rig.cases.negative import CASES, main


def test_docs_table_matches_the_cases() -> None:
    """docs/negative-matrix.md is generated from the same table (python -m rig.cases.negative)."""
    assert main(["--check"]) == 0, \
        "docs/negative-matrix.md is stale: run python -m rig.cases.negative"
    # the file is markdown() of CASES, so it has a row per case; what the table must hold:
    ids = [c.id for c in CASES]
    assert len(set(ids)) == len(ids), f"case ids repeat: {ids}"  # test ids and JUnit names
    for c in CASES:
        assert c.id.startswith(f"{c.mode}-"), f"{c.id}: ids are <mode>-<what>"
        # an empty expectation would let device_verdict pass whatever the device says
        assert all(err for _, err in c.device_expectations()), f"{c.id}: no device ERR"
