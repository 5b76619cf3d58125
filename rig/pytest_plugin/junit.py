"""JUnit names and suite properties, set by the process that writes junit.xml.

With pytest-xdist the tests run in worker processes, where `record_xml_attribute` and
`record_testsuite_property` do nothing (only the controller writes the XML). The rig therefore
names a case (`<board>.<mode>.<case>`) from its report, in the process that holds pytest's
junitxml writer, which is the controller with -n and the one process without it.

pytest has no public API for this outside a test; this module is the one place that uses its
junitxml stash key (the same object `record_xml_attribute` uses)."""

from __future__ import annotations

import pytest
from _pytest.junitxml import xml_key


def name_case(config: pytest.Config, report: pytest.TestReport, name: str) -> None:
    """Sets the JUnit `name` of the test case `report` belongs to. Call it for the set-up
    report (the writer closes a case after its tear-down report)."""
    xml = config.stash.get(xml_key, None)
    if xml is not None:
        xml.node_reporter(report).add_attribute("name", name)


def add_suite_property(config: pytest.Config, name: str, value: str) -> None:
    """A `<property>` of the whole test suite (no-op without --junitxml)."""
    xml = config.stash.get(xml_key, None)
    if xml is not None:
        xml.add_global_property(name, value)
