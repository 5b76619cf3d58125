"""rig/local/spans.py: a cell's own work, counted once where spans nest or overlap."""

from __future__ import annotations

import pytest

from rig.local import spans


def test_nested_and_overlapping_spans_count_once() -> None:
    got = spans.union_s([("console", 0.0, 1.0), ("mqtt", 0.5, 0.8),  # inside the console's
                         ("https", 2.0, 3.0), ("https", 2.5, 3.5), ("broker", 5.0, 5.25)])
    assert got[""] == pytest.approx(1.0 + 1.5 + 0.25)
    assert got["https"] == pytest.approx(1.5)
    assert got["mqtt"] == pytest.approx(0.3)
    assert got["console"] == pytest.approx(1.0)


def test_take_returns_each_span_once() -> None:
    spans.take()
    with spans.work("mqtt"):
        pass
    with pytest.raises(ValueError), spans.work("https"):  # a failed exchange is work too
        raise ValueError
    taken = spans.take()
    assert [kind for kind, _, _ in taken] == ["mqtt", "https"]
    assert all(start <= end for _, start, end in taken)
    assert spans.take() == []
    assert spans.union_s([]) == {"": 0.0}
