"""Golden outputs: for every shipped topology and three seeded TCP scenarios, the JSON report
and the pcap bytes of one ``emunet run``, kept under ``tests/golden/`` so that a change that
should not change behaviour (a restructure, speed work) is checked byte for byte.

``tests/test_golden.py`` runs each scenario and compares.  When a change of behaviour is
deliberate, regenerate the files in their own commit that says why::

    .venv/bin/python tests/golden.py            # every scenario
    .venv/bin/python tests/golden.py three-hop  # only the named ones

``tests/golden/<name>.json`` is the report as ``--json`` writes it (a failing test shows the
difference); ``tests/golden/digests.json`` holds the sha256 of each report and of each pcap.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import pathlib
import sys
import tempfile

HERE = pathlib.Path(__file__).parent
ROOT = HERE.parent
GOLDEN = HERE / "golden"
DIGESTS = GOLDEN / "digests.json"

SCENARIOS: dict[str, pathlib.Path] = {
    **{p.stem: p for p in sorted((ROOT / "topologies").glob("*.yaml"))},
    **{p.stem: p for p in sorted((GOLDEN / "scenarios").glob("*.yaml"))},
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run_scenario(name: str) -> dict:
    """Run ``emunet run`` on the scenario in this process; returns its exit status, stdout,
    report text (JSON) and the digest of each pcap."""
    from emunet import cli

    path = SCENARIOS[name]
    with tempfile.TemporaryDirectory() as tmp:
        report = pathlib.Path(tmp) / "report.json"
        pcaps = pathlib.Path(tmp) / "pcap"
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = cli.main(["run", str(path), "--json", str(report), "--pcap", str(pcaps)])
        return {
            "status": status,
            "stdout": out.getvalue(),
            "stderr": err.getvalue(),
            "report": report.read_text() if report.exists() else "",
            "pcaps": {p.name: sha256(p.read_bytes()) for p in sorted(pcaps.glob("*.pcap"))},
        }


def load_digests() -> dict:
    return json.loads(DIGESTS.read_text()) if DIGESTS.exists() else {}


def regenerate(names: list[str]) -> None:
    digests = load_digests()
    for name in names:
        result = run_scenario(name)
        if result["status"] != 0:
            raise SystemExit(f"{name}: emunet run exited {result['status']}:\n{result['stderr']}")
        (GOLDEN / f"{name}.json").write_text(result["report"])
        digests[name] = {"report": sha256(result["report"].encode()), "pcaps": result["pcaps"]}
        print(f"{name}: report {digests[name]['report'][:12]}, {len(result['pcaps'])} pcaps")
    for stale in [n for n in digests if n not in SCENARIOS]:
        del digests[stale]
    DIGESTS.write_text(json.dumps(digests, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    wanted = sys.argv[1:] or list(SCENARIOS)
    unknown = [n for n in wanted if n not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenarios {unknown}; known: {', '.join(SCENARIOS)}")
    regenerate(wanted)
