"""The GPU benchmark script runs on CPU with tiny shapes, so it cannot rot between GPU sessions."""
import importlib.util
from pathlib import Path


def test_gpu_throughput_benchmark_runs_with_tiny_shapes():
    path = Path(__file__).resolve().parents[1] / "bench/bench_gpu_throughput.py"
    spec = importlib.util.spec_from_file_location("bench_gpu_throughput", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    report = module.main(["--tiny", "--repeats", "1", "--warmup", "0"])
    assert report["xglm"]["steps_per_s"] > 0
    assert report["llama8b"]["task"]["tokens_per_s"] > 0 and report["llama8b"]["alignment"]["MFU"] > 0
