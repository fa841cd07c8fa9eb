"""The README's pytest example, copied verbatim out of README.md, passes as a user's test."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Testing your own code with pytest", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the README's pytest section has no python block"
    return match.group(1)


def test_readme_pytest_example_passes(tmp_path: Path) -> None:
    test_file = tmp_path / "test_readme_example.py"
    test_file.write_text(_example())
    # Run it as a user would: pytest with the emunet plugin and pytest-trio's trio mode, from
    # the project directory (the example names topologies/three-hop.yaml).
    (tmp_path / "pytest.ini").write_text("[pytest]\ntrio_mode = true\n")
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c",
         str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path), str(test_file)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert re.search(r"\b[1-9]\d* passed\b", out.stdout), out.stdout
