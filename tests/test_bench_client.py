"""benchmarks/bench_client.py runs end to end against a baseline tree and reports
positive figures with no key leak (no speed is asserted: the machines are noisy)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_bench_client_smoke_compares_two_trees() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYMENT_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(  # this tree as its own baseline: both rows must appear
        [sys.executable, str(ROOT / "benchmarks" / "bench_client.py"), "--smoke", "--json",
         "--baseline-tree", str(ROOT)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(proc.stdout)["rows"]
    assert [r["tree"] for r in rows] == ["this tree", "baseline"]
    for row in rows:
        assert row["jobs"] == 30 and row["key_leaks"] == 0
        for key in ("jobs_per_s", "cpu_ms_per_job", "jobs_per_s_vs_baseline",
                    "cpu_vs_baseline"):
            assert math.isfinite(row[key]) and row[key] > 0, (key, row[key])
    assert rows[1]["cpu_vs_baseline"] == 1.0
