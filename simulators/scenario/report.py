"""The pass/fail report of a scenario run, as text for people and JSON for CI."""

from __future__ import annotations

import json

from simulators.scenario.runner import RunResult


def render_text(result: RunResult) -> str:
    """One line per expectation (PASS/FAIL, what was expected, what the hub holds, why it failed)."""
    lines = [
        f"scenario {result.scenario}: {'PASSED' if result.passed else 'FAILED'} in {result.elapsed_s:.1f} s"
    ]
    lines.extend(f"  note: {note}" for note in result.notes)
    for check in result.checks:
        mark = "PASS" if check.passed else "FAIL"
        line = f"  {mark}  {check.name}: {check.actual} (expected {check.expected})"
        if not check.passed and check.why:
            line += f"\n        why: {check.why}"
        lines.append(line)
    failed = sum(1 for check in result.checks if not check.passed)
    lines.append(
        f"{len(result.checks) - failed} passed, {failed} failed" + ("" if result.settled else ", not settled")
    )
    return "\n".join(lines) + "\n"


def render_json(result: RunResult) -> str:
    """The same report as one JSON document."""
    document = {
        "scenario": result.scenario,
        "passed": result.passed,
        "settled": result.settled,
        "elapsed_s": round(result.elapsed_s, 3),
        "notes": result.notes,
        "checks": [check.as_dict() for check in result.checks],
    }
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"
