"""The recipe on a GPU as users launch it, checked in one call of the device tool (issue 24); run by gpu_check.sh.

Stages, each written into one JSON (``--output``) as soon as it ends, so a call stopped at its limit still returns
what it measured; a stage that would not fit in what is left of ``--budget-s`` is skipped and says so:

1. ``environment``: card, versions, date, commit.
2. ``recipe``: a Llama-3.2-1B-shaped random model (hidden 2,048, 16 blocks, 32/8 heads, ffn 8,192, vocabulary
   128,256, tied; the byte-level tokenizer) saved locally, then ``bash scripts/train_with_alignment.sh``
   unchanged with MODEL_PATH set to it: on a GPU machine its GPU branch picks bf16, DeepSpeed ZeRO-2
   (config/deepspeed_config.json), gradient checkpointing and torchrun by itself. ``--steps`` optimizer steps
   on data_example/, a checkpoint every ``--steps // 3``; passes if every logged loss is finite and the
   mean task loss of the last logged steps is below that of the first ones.
3. ``resume``: the same run resumed (RESUME=<its checkpoint at 2/3 of the steps>) in a fresh folder; passes if
   its losses after the checkpoint and its final adapter equal the uninterrupted run's, to
   ``RESUME_TOLERANCE``.
4. ``fp32_gpu_vs_cpu``: the tiny smoke recipe (MODEL_PATH=tiny, fp32, one process) on the GPU and with the GPU
   hidden; passes if the per-step losses agree to ``GPU_CPU_TOLERANCE`` (skipped without a GPU).
5. ``benchmarks``: bench/bench_gpu_throughput.py, one part at a time (xglm-564M AFP step against AFP's
   7.55 step/s and 33,269 MB on one A800; Llama-3-8B-shaped LoRA task and alignment steps, tokens/s and
   MFU; the training benchmark's throughput and memory ratios against the mid-align configuration).

``--tiny``: every shape tiny and few steps, so the suite runs the whole script on a CPU
(tests/bench/test_gpu_check.py); there the recipe takes its CPU branch.
"""

import argparse
import datetime
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# A resumed run recomputes the same steps from the same state: only kernel nondeterminism may differ.
RESUME_TOLERANCE = 1e-3
# fp32 on the GPU and the CPU: the same computation, different kernels (summation order), over a few Adam steps.
GPU_CPU_TOLERANCE = 1e-3
LLAMA_1B = dict(
    hidden_size=2048,
    num_hidden_layers=16,
    num_attention_heads=32,
    num_key_value_heads=8,
    intermediate_size=8192,
    vocab_size=128256,
    rope_theta=500000.0,
    max_position_embeddings=131072,
    tie_word_embeddings=True,
)
TINY_LLAMA = {}  # transformers_align.tiny's own tiny Llama
# The tiny check's run: the real-model recipe's CPU branch, with a batch that a loaded 2-core CPU trains quickly.
TINY_RUN = dict(TRAIN_BSZ="4", GRAD_ACC="1", BLOCK_SIZE="512")


class Report:
    """The JSON of the check, rewritten after every stage."""

    def __init__(self, path, budget_s):
        self.path, self.started, self.budget_s = Path(path), time.monotonic(), budget_s
        self.data = {"stages": {}}

    def left(self) -> float:
        return self.budget_s - (time.monotonic() - self.started)

    def write(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=2, default=str) + "\n")

    def stage(self, name, needs_s, run):
        """Run ``run()`` (a dict of figures, with ``passed``) if ``needs_s`` seconds are left; record it either way."""
        if self.left() < needs_s:
            self.data["stages"][name] = {"skipped": f"{self.left():.0f} s left of the budget, {needs_s} s needed"}
        else:
            start = time.monotonic()
            try:
                self.data["stages"][name] = run()
            except Exception as error:  # a stage that breaks is a finding: record it and go on
                self.data["stages"][name] = {"passed": False, "error": f"{type(error).__name__}: {error}"[-3000:]}
            self.data["stages"][name]["seconds"] = round(time.monotonic() - start, 1)
        print(f"gpu_check: {name}: {json.dumps(self.data['stages'][name], default=str)[:400]}", flush=True)
        self.write()


def commit() -> str:
    if os.environ.get("GPU_CHECK_COMMIT"):
        return os.environ["GPU_CHECK_COMMIT"]
    result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return result.stdout.strip() or "unknown (pass GPU_CHECK_COMMIT)"


def environment():
    import torch
    import transformers

    versions = {"python": sys.version.split()[0], "torch": torch.__version__, "transformers": transformers.__version__}
    for name in ("peft", "deepspeed", "accelerate", "tokenizers", "datasets"):
        try:
            versions[name] = __import__(name).__version__
        except Exception as error:  # recorded: the recipe stages will fail on it
            versions[name] = f"not importable: {error}"
    gpu = torch.cuda.is_available()
    return {
        "card": torch.cuda.get_device_name() if gpu else "none (CPU)",
        "gpus": torch.cuda.device_count(),
        "bf16_supported": bool(gpu and torch.cuda.is_bf16_supported()),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit(),
        "versions": versions,
        "passed": versions["transformers"] == "4.43.4",
    }


def build_model(folder, shape):
    """A random Llama of ``shape`` with the byte-level tokenizer, saved as a model folder (bf16 on a GPU)."""
    import torch
    from transformers import AutoModelForCausalLM

    from transformers_align.tiny import byte_level_tokenizer, tiny_config

    torch.manual_seed(0)
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = AutoModelForCausalLM.from_config(tiny_config("llama", **shape), torch_dtype=dtype)
    model.save_pretrained(folder)
    byte_level_tokenizer().save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def recipe(outdir, timeout, *arguments, **variables):
    """``bash scripts/train_with_alignment.sh`` as a user runs it; the last lines of its output if it fails."""
    env = dict(os.environ, OUTDIR=str(outdir), **variables)
    command = ["bash", str(REPO / "scripts/train_with_alignment.sh"), *arguments]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    launch = [line for line in result.stdout.splitlines() if line.startswith("launch:")]
    if result.returncode != 0:
        raise RuntimeError(f"exit {result.returncode}: {(result.stdout + result.stderr)[-2500:]}")
    return launch[0] if launch else ""


def logged(outdir):
    """``{step: {task_loss, alignment_loss, grad_norm}}`` of every training log."""
    history = json.loads((Path(outdir) / "trainer_state.json").read_text())["log_history"]
    names = ("task_loss", "alignment_loss", "grad_norm")
    return {h["step"]: {n: h[n] for n in names if n in h} for h in history if "loss" in h}


def adapter_difference(a, b) -> float:
    from safetensors.torch import load_file

    first, second = load_file(Path(a) / "adapter_model.safetensors"), load_file(Path(b) / "adapter_model.safetensors")
    if first.keys() != second.keys():
        return math.inf
    return max(float((first[k].float() - second[k].float()).abs().max()) for k in first)


def largest_difference(a, b, steps) -> float:
    return max(
        (abs(a[s][n] - b[s][n]) for s in steps for n in ("task_loss", "alignment_loss") if n in a[s]), default=math.inf
    )


def recipe_stage(work, shape, steps, timeout, variables):
    folder = work / "model"
    parameters = build_model(folder, shape)
    save_every = max(steps // 3, 1)
    arguments = ("--max_steps", str(steps), "--save_steps", str(save_every), "--logging_steps", "1")
    start = time.monotonic()
    launch = recipe(work / "run", timeout, *arguments, MODEL_PATH=str(folder), **variables)
    seconds = time.monotonic() - start
    logs = logged(work / "run")
    task = [v["task_loss"] for v in logs.values() if "task_loss" in v]
    alignment = [v["alignment_loss"] for v in logs.values() if "alignment_loss" in v]
    window = max(len(task) // 4, 1)
    finite = all(math.isfinite(v) for entry in logs.values() for v in entry.values())
    falls = sum(task[-window:]) / window < sum(task[:window]) / window
    return {
        "model": "Llama-3.2-1B shape, random weights" if shape is LLAMA_1B else "tiny Llama",
        "parameters": parameters,
        "launch": launch,
        "steps": steps,
        "wall_s": round(seconds, 1),
        "task_loss_first_last": [task[0], task[-1]] if task else None,
        "alignment_loss_first_last": [alignment[0], alignment[-1]] if alignment else None,
        "task_loss_mean_first_last_window": [sum(task[:window]) / window, sum(task[-window:]) / window],
        "finite": finite,
        "task_loss_falls": falls,
        "passed": finite and falls and bool(alignment),
        "checkpoint_every": save_every,
    }


def resume_stage(work, steps, save_every, timeout, variables):
    checkpoint = work / "run" / f"checkpoint-{2 * save_every}"
    arguments = ("--max_steps", str(steps), "--save_steps", str(save_every), "--logging_steps", "1")
    recipe(work / "resumed", timeout, *arguments, MODEL_PATH=str(work / "model"), RESUME=str(checkpoint), **variables)
    full, resumed = logged(work / "run"), logged(work / "resumed")
    after = [s for s in sorted(full) if s > 2 * save_every]
    losses = largest_difference(full, resumed, after) if set(after) <= set(resumed) else math.inf
    adapters = adapter_difference(work / "run", work / "resumed")
    return {
        "resumed_from": checkpoint.name,
        "steps_compared": after,
        "largest_loss_difference": losses,
        "largest_adapter_difference": adapters,
        "tolerance": RESUME_TOLERANCE,
        "passed": losses <= RESUME_TOLERANCE and adapters <= RESUME_TOLERANCE,
    }


def fp32_stage(work, timeout):
    import torch

    if not torch.cuda.is_available():
        return {"skipped": "no GPU", "passed": None}
    tiny = dict(MODEL_PATH="tiny", TINY_MODEL_DIR=str(work / "tiny"), PRECISION="fp32")
    arguments = ("--max_steps", "6", "--logging_steps", "1", "--do_eval", "False")
    recipe(work / "tiny_gpu", timeout / 2, *arguments, **tiny)
    recipe(work / "tiny_cpu", timeout / 2, *arguments, **tiny, CUDA_VISIBLE_DEVICES="")
    gpu, cpu = logged(work / "tiny_gpu"), logged(work / "tiny_cpu")
    difference = largest_difference(gpu, cpu, sorted(gpu)) if gpu.keys() == cpu.keys() else math.inf
    return {
        "steps": sorted(gpu),
        "gpu_losses": gpu,
        "cpu_losses": cpu,
        "largest_loss_difference": difference,
        "tolerance": GPU_CPU_TOLERANCE,
        "passed": difference <= GPU_CPU_TOLERANCE,
    }


def benchmark_stage(work, part, tiny, timeout):
    output = work / f"bench_{part}.json"
    command = [sys.executable, str(REPO / "bench/bench_gpu_throughput.py"), "--which", part]
    command += ["--output-json", str(output)]
    if tiny:
        command += ["--tiny", "--repeats", "1", "--warmup", "0"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=REPO / "bench")
    if result.returncode != 0:
        raise RuntimeError(f"exit {result.returncode}: {(result.stdout + result.stderr)[-2500:]}")
    return {**json.loads(output.read_text())[part], "passed": True}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, help="the JSON to write (under $OUT on the device)")
    parser.add_argument("--work", default="/tmp/gpu_check", help="scratch folder (emptied first)")
    parser.add_argument("--tiny", action="store_true", help="tiny shapes and few steps: a CPU smoke test")
    parser.add_argument("--steps", type=int, default=None, help="recipe steps (default 30, tiny 6)")
    parser.add_argument("--budget-s", type=float, default=450, help="seconds for all stages (the call has 8 minutes)")
    args = parser.parse_args(argv)
    steps = args.steps or (6 if args.tiny else 30)
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    report = Report(args.output, args.budget_s)
    report.stage("environment", 0, environment)
    report.data.update({k: report.data["stages"]["environment"][k] for k in ("card", "date", "commit")})
    shape = TINY_LLAMA if args.tiny else LLAMA_1B
    variables = TINY_RUN if args.tiny else {}
    report.stage("recipe", 60, lambda: recipe_stage(work, shape, steps, report.left(), variables))
    save_every = report.data["stages"]["recipe"].get("checkpoint_every", max(steps // 3, 1))
    report.stage("resume", 45, lambda: resume_stage(work, steps, save_every, report.left(), variables))
    report.stage("fp32_gpu_vs_cpu", 40, lambda: fp32_stage(work, report.left()))
    for part, needs in (("xglm", 30), ("llama8b", 90), ("training", 120)):
        run = lambda part=part: benchmark_stage(work, part, args.tiny, report.left())  # noqa: E731
        report.stage(f"benchmark_{part}", needs, run)
    verdicts = {name: stage.get("passed") for name, stage in report.data["stages"].items()}
    report.data["passed"] = verdicts
    report.write()
    print(json.dumps(verdicts))
    return report.data


if __name__ == "__main__":
    main()
