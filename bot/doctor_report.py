"""The doctor's findings and their printed checklist (`python app.py doctor`)."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Mark(enum.StrEnum):
    OK = "✓"
    FAILED = "✗"
    NOT_APPLICABLE = "–"


@dataclass(frozen=True)
class Finding:
    mark: Mark
    sentence: str
    check: str = ""  # a short stable name, for tests and scripts

    @classmethod
    def ok(cls, check: str, sentence: str) -> Finding:
        return cls(Mark.OK, sentence, check)

    @classmethod
    def failed(cls, check: str, sentence: str) -> Finding:
        return cls(Mark.FAILED, sentence, check)

    @classmethod
    def not_applicable(cls, check: str, sentence: str) -> Finding:
        return cls(Mark.NOT_APPLICABLE, sentence, check)


@dataclass(frozen=True)
class Report:
    findings: tuple[Finding, ...]

    @property
    def healthy(self) -> bool:
        return not any(finding.mark is Mark.FAILED for finding in self.findings)

    def finding(self, check: str) -> Finding:
        return next(finding for finding in self.findings if finding.check == check)


def render(report: Report) -> str:
    """The printed checklist: one line per finding, then a summary line."""
    lines = ["tapbot doctor", ""]
    lines += [f"{finding.mark.value} {finding.sentence}" for finding in report.findings]
    failed = sum(finding.mark is Mark.FAILED for finding in report.findings)
    passed = sum(finding.mark is Mark.OK for finding in report.findings)
    lines.append("")
    if failed:
        lines.append(
            f"{failed} check(s) failed, {passed} passed. Fix the ✗ lines, then run `python app.py doctor` again."
        )
    else:
        lines.append(f"All {passed} checks passed.")
    return "\n".join(lines)


class Checklist:
    """Writes findings: one ✓, ✗ or – line per check."""

    findings: list[Finding]

    def _ok(self, check: str, sentence: str) -> None:
        self.findings.append(Finding.ok(check, sentence))

    def _fail(self, check: str, sentence: str) -> None:
        self.findings.append(Finding.failed(check, sentence))

    def _not_applicable(self, check: str, sentence: str) -> None:
        self.findings.append(Finding.not_applicable(check, sentence))


def _reason(error: BaseException) -> str:
    """An error as a short phrase: its class and the first line of its message (never a token or secret)."""
    if isinstance(error, TimeoutError):
        return "no answer in time"
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {first_line[:300]}" if first_line else type(error).__name__
