"""Prints the fault suite's figures at the end of the run, also when output is captured (CI)."""

from __future__ import annotations


def pytest_terminal_summary(terminalreporter) -> None:
    from tests.chaos.test_faults import FIGURES

    if FIGURES:
        terminalreporter.section("fault suite")
        for line in FIGURES:
            terminalreporter.write_line(line)
