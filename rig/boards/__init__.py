"""Boards: the devices under test, each handing tests a pytest-embedded `Dut`."""
