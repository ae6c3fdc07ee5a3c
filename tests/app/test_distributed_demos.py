"""The training demos on 2 simulated CPU devices (`--strategy`), and the
multi-worker example on localhost."""

import json
import os
import subprocess
import sys

import pytest

from conftest import BACKEND

STRATEGY = {"tensorflow": "mirrored", "jax": "data-parallel"}.get(BACKEND)
pytestmark = pytest.mark.skipif(STRATEGY is None, reason=f"no strategy for {BACKEND}")


def _env():
    env = dict(os.environ, KERAS_BACKEND=BACKEND, KERAZOO_CPU_DEVICES="2")
    env.pop("XLA_FLAGS", None)
    return env


@pytest.mark.slow
def test_demo_cli_trains_with_a_strategy():
    env = _env()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kerazoo",
            "demo",
            "adder",
            "--retrain",
            "--epochs",
            "1",
            "--strategy",
            STRATEGY,
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["weights"] == "trained now" and summary["replicas"] == 2


@pytest.mark.slow
@pytest.mark.skipif(BACKEND != "tensorflow", reason="MultiWorkerMirroredStrategy is tf.distribute")
def test_two_workers_on_localhost(tmp_path):
    """The README's multi-worker command: two processes, one model, in sync."""
    script = os.path.join(os.path.dirname(__file__), "..", "..", "demos", "multiworker.py")
    result = subprocess.run(
        [sys.executable, script, "--workers", "2", "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    workers = [json.loads((tmp_path / f"r.{i}.json").read_text()) for i in range(2)]
    assert all(w["replicas"] == 2 for w in workers)
    assert workers[0]["loss"] == workers[1]["loss"]
    assert workers[0]["loss"][-1] < workers[0]["loss"][0]
