"""The benchmark scripts run on CPU with tiny shapes, so they cannot rot between GPU sessions."""

import importlib.util

from tests.support import REPO

BENCH = REPO / "bench"


def test_gpu_throughput_benchmark_runs_with_tiny_shapes(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))  # bench scripts import each other, as when run as scripts
    path = BENCH / "bench_gpu_throughput.py"
    spec = importlib.util.spec_from_file_location("bench_gpu_throughput", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    report = module.main(["--tiny", "--repeats", "1", "--warmup", "0"])
    assert report["xglm"]["steps_per_s"] > 0
    assert report["llama8b"]["task"]["tokens_per_s"] > 0 and report["llama8b"]["alignment"]["MFU"] > 0
    assert report["training"]["throughput_ratio"] > 0 and report["training"]["memory_ratio"] > 0


def test_training_throughput_benchmark_runs_with_tiny_shapes(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(BENCH))
    spec = importlib.util.spec_from_file_location("bench_training_throughput", BENCH / "bench_training_throughput.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    throughput_ratio, memory_ratio = module.main(["--tiny", "--threads", "1"])
    assert (
        capsys.readouterr().out.splitlines()[-1]
        == f"throughput_ratio={throughput_ratio:.2f} memory_ratio={memory_ratio:.2f}"
    )
    assert throughput_ratio > 0 and 0 < memory_ratio < 1  # the tiny memory shape's logits dwarf its activations
