"""Same seed, same bytes: every shipped topology and the golden TCP scenarios give exactly the
JSON report and pcaps recorded under tests/golden/ (regenerate with ``python tests/golden.py``
in a commit that says why the behaviour changed).  Also: each runs to exit 0 with a clean
report and nothing on stderr."""

from __future__ import annotations

import difflib
import json

import pytest
from golden import GOLDEN, SCENARIOS, load_digests, run_scenario, sha256

# Scenarios whose experiments take more than a few seconds of CPU (long TCP transfers); marked
# slow so that a quick local run can deselect them (-m "not slow").  CI runs them all.
HEAVY = {"dumbbell", "lan-switch", "link-failure", "lossy-wan"}


def _diff(expected: str, actual: str) -> str:
    lines = difflib.unified_diff(
        json.dumps(json.loads(expected), indent=1, sort_keys=True).splitlines(),
        json.dumps(json.loads(actual), indent=1, sort_keys=True).splitlines(),
        "golden",
        "now",
        lineterm="",
        n=2,
    )
    return "\n".join(list(lines)[:80])


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in SCENARIOS],
)
def test_golden_outputs(name: str) -> None:
    digests = load_digests()
    assert name in digests, f"no golden digests for {name}: run python tests/golden.py {name}"
    result = run_scenario(name)
    assert result["status"] == 0, result["stdout"][-3000:] + result["stderr"]
    out = result["stdout"]
    assert out.startswith("emunet run: ")
    assert "FAILED" not in out and out.rstrip().splitlines()[-1].startswith("OK: ")
    assert result["stderr"] == ""  # stderr is no terminal here: no progress line
    expected = digests[name]
    report = result["report"]
    if sha256(report.encode()) != expected["report"]:
        golden = (GOLDEN / f"{name}.json").read_text()
        pytest.fail(f"{name}: the JSON report differs from the golden:\n{_diff(golden, report)}")
    assert result["pcaps"] == expected["pcaps"], f"{name}: pcap bytes differ"
