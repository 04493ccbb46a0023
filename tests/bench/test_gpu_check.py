"""The prepared GPU check (bench/gpu_check.sh) runs whole on a CPU with tiny shapes, so it cannot rot before the
first GPU is lent: every stage ends, the JSON holds card, date, commit and every figure, and the resume
comparison it reports is the one the two runs' own logs give."""

import json
import subprocess

import pytest

from tests.support import REPO
from tests.support.processes import cpu_env

pytestmark = pytest.mark.slow  # three tiny recipe runs and the benchmarks' tiny shapes


def test_the_gpu_check_runs_every_stage_with_tiny_shapes_and_reports_them(tmp_path):
    env = cpu_env(
        OUT=str(tmp_path / "out"), GPU_CHECK_TINY="1", GPU_CHECK_WORK=str(tmp_path / "work"), GPU_CHECK_BUDGET_S="3000"
    )
    result = subprocess.run(
        ["bash", str(REPO / "bench/gpu_check.sh")], env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "out/gpu_check.json").read_text())
    assert report["card"] == "none (CPU)" and report["date"] and len(report["commit"]) == 40
    assert (tmp_path / "out/gpu_check.log").read_text().strip().splitlines()[-1] == json.dumps(report["passed"])
    stages = report["stages"]
    recipe = stages["recipe"]
    assert recipe["launch"].startswith("launch: model ") and "precision fp32, DeepSpeed off" in recipe["launch"]
    assert recipe["finite"] and recipe["passed"], recipe
    # The resume figures, recomputed from the two runs' logs and adapters.
    from safetensors.torch import load_file

    def logged(name):
        history = json.loads((tmp_path / "work" / name / "trainer_state.json").read_text())["log_history"]
        return {h["step"]: h for h in history if "loss" in h}

    full, resumed = logged("run"), logged("resumed")
    after = stages["resume"]["steps_compared"]
    assert after == [s for s in sorted(full) if s > 2 * recipe["checkpoint_every"]] and set(after) <= set(resumed)
    difference = max(
        abs(full[s][n] - resumed[s][n]) for s in after for n in ("task_loss", "alignment_loss") if n in full[s]
    )
    assert stages["resume"]["largest_loss_difference"] == pytest.approx(difference, abs=1e-12)
    a, b = (load_file(tmp_path / "work" / name / "adapter_model.safetensors") for name in ("run", "resumed"))
    assert stages["resume"]["largest_adapter_difference"] == pytest.approx(
        max(float((a[k] - b[k]).abs().max()) for k in a), abs=1e-12
    )
    assert stages["resume"]["passed"]
    assert stages["fp32_gpu_vs_cpu"]["skipped"] == "no GPU"
    assert stages["benchmark_xglm"]["steps_per_s"] > 0 and stages["benchmark_llama8b"]["task"]["tokens_per_s"] > 0
    assert stages["benchmark_training"]["throughput_ratio"] > 0
