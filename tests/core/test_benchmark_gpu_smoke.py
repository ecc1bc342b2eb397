"""benchmarks/gpu.py runs on the CPU in smoke mode (issue 15: GPU minutes go to measuring, not
to debugging the script), covers every zoo model, and names missing packages instead of failing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from cnnlab.models import MODELS

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu.py"


def test_smoke_run_on_the_cpu():
    done = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--smoke", "--json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["device"] == "cpu" and result["smoke"]
    assert result["mnist"]["seconds"] > 0 and result["mnist"]["epoch"] == 1
    assert {row["model"] for row in result["models"]} == set(MODELS.names())
    assert all(row["images_per_s"] > 0 for row in result["models"])
    cifar = result["cifar10_94"]  # cifar10-fast (narrowed) on a generated folder: the code path runs
    assert len(cifar["runs"]) == 1 and cifar["mean_seconds"] > 0 and 0 <= cifar["mean_test_acc_tta"] <= 1
    assert cifar["target"] == 0.94 and cifar["anchor_s"] == 3.09


def test_missing_packages_are_named(tmp_path):
    blocker = tmp_path / "sitecustomize.py"  # makes `import pydantic` fail in the child
    blocker.write_text("import sys\nsys.modules['pydantic'] = None\n")
    done = subprocess.run([sys.executable, str(SCRIPT), "--smoke"], capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2
    assert "missing Python packages: pydantic" in done.stderr and "Traceback" not in done.stderr
