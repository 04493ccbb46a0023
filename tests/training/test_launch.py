"""The recipe as users launch it: `bash scripts/train_with_alignment.sh` with NPROC, DeepSpeed and two nodes on CPU.

Each multi-process run must EQUAL one process on the doubled batch: per-step task and alignment losses
and the final adapter, to 1e-5 (LoRA dropout 0, negatives gathered across ranks). The task loss of a
distributed step is the mean of the per-rank means, which equals the global mean only when every rank
holds as many labelled tokens: the rows below all have the same number of labelled tokens.
"""

import json
import subprocess

import pytest

from tests.support import REPO
from tests.support.processes import cpu_env, free_port
from tests.support.training import PREFIX, assert_same_run, pair, write_lora_config
from transformers_align.training.checkpoints import REPORT_FILE

STEPS = "4"  # alternate: task, alignment, task (after an aligned step), alignment
# Messages a user can do nothing about; none may reach a CPU run's output.
NOISE = (
    "Setting accelerator to CPU",
    "transformers.deepspeed module is deprecated",
    "pin_memory",
    "all_gather_into_tensor",
    "Traceback",
)

pytestmark = pytest.mark.slow  # end to end: a script, torchrun or a real model


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    """Training rows with equal labelled-token counts, a dropout-free LoRA config, and a runner of the script."""
    root = tmp_path_factory.mktemp("launch")
    rows = [
        {
            "prefix": PREFIX.format(f"set an alarm for {i}"),
            "text": f"time: {i:02d}<|eot_id|>",
            "text_parallel_0": pair(i)[0],
            "text_parallel_1": pair(i)[1],
        }
        for i in range(16)
    ]
    (root / "train.json").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    write_lora_config(root / "lora.json")

    def launch(name, *extra, wait=True, **variables):
        env = cpu_env(
            **{
                "MODEL_PATH": "tiny",
                "TINY_MODEL_DIR": str(root / "tiny"),
                "TRAIN_FILES": str(root / "train.json"),
                "LORA_CONFIG": str(root / "lora.json"),
                "OUTDIR": str(root / name),
                "LOGGING_STEPS": "1",
                **variables,
            }
        )
        command = [
            "bash",
            str(REPO / "scripts/train_with_alignment.sh"),
            "--max_steps",
            STEPS,
            "--gather_negatives_across_ranks",
            "True",
            "--do_eval",
            "False",
            *extra,
        ]
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        return finish(process, root / name) if wait else (process, root / name)

    subprocess.run(
        ["python", "-m", "scripts.make_tiny_model", "--output-dir", str(root / "tiny")],
        cwd=REPO,
        env=cpu_env(),
        check=True,
        capture_output=True,
    )
    launch.model_dir = root / "tiny"
    return launch


def finish(process, outdir):
    output, _ = process.communicate(timeout=900)
    assert process.returncode == 0, output[-4000:]
    return outdir, output


def losses(outdir):
    history = json.loads((outdir / "trainer_state.json").read_text())["log_history"]
    return [(h["step"], h.get("task_loss"), h.get("alignment_loss")) for h in history if "loss" in h]


def assert_same_as(outdir, reference):
    """Per-step losses (all STEPS logged) and the final adapter equal those of the ``reference`` run."""
    got, want = losses(outdir), losses(reference)
    assert [s for s, *_ in got] == [s for s, *_ in want] == list(range(1, int(STEPS) + 1))
    assert_same_run(outdir, reference, [values for _, *values in got], [values for _, *values in want])


def noise_in(lines):
    return [line for line in lines if any(noise in line for noise in NOISE)]


@pytest.fixture(scope="module")
def single(recipe):
    """One process, global batch 4; its output also shows what a user sees on a CPU run (imports listed)."""
    outdir, output = recipe("single", TRAIN_BSZ="4", PYTHONPROFILEIMPORTTIME="1")
    imports = [line.rsplit("|", 1)[-1].strip() for line in output.splitlines() if line.startswith("import time:")]
    assert "transformers_align.training.run" in imports and "deepspeed" not in imports  # not even imported
    assert "1 node(s) x 1 process(es), precision fp32, DeepSpeed off" in output
    assert not noise_in(line for line in output.splitlines() if not line.startswith("import time:"))
    return outdir


def test_two_processes_equal_one_process_on_the_doubled_batch(recipe, single):
    outdir, output = recipe("nproc2", TRAIN_BSZ="2", NPROC="2")
    assert "1 node(s) x 2 process(es)" in output
    assert_same_as(outdir, single)


def test_two_nodes_on_one_machine_equal_one_process(recipe, single):
    port, nodes = free_port(), []
    for rank in ("1", "0"):
        nodes.append(
            recipe(f"node{rank}", wait=False, TRAIN_BSZ="2", NNODES="2", NPROC="1", NODE_RANK=rank, MASTER_PORT=port)
        )
    for process, outdir in nodes:
        finish(process, outdir)
    assert_same_as(nodes[1][1], single)
    assert not (nodes[0][1] / "adapter_model.safetensors").exists()  # only the main process writes


def test_deepspeed_zero2_on_two_processes_equals_one_plain_process(recipe):
    # Joint mode: every LoRA weight gets a gradient each step. In alternate mode ZeRO's flat buffers give the
    # blocks above the aligned layer zero gradients on alignment steps (Adam's momentum still moves them),
    # where torch leaves them untouched; so there the two differ by design.
    plain, _ = recipe("joint_single", "--training_mode", "joint", TRAIN_BSZ="4")
    outdir, output = recipe(
        "joint_zero2",
        "--training_mode",
        "joint",
        TRAIN_BSZ="2",
        NPROC="2",
        DEEPSPEED_CONFIG=str(REPO / "config/deepspeed_config_cpu.json"),
    )
    assert "DeepSpeed " + str(REPO / "config/deepspeed_config_cpu.json") in output and not noise_in(output.splitlines())
    assert_same_as(outdir, plain)


def test_a_real_model_on_a_machine_without_gpu_trains_in_one_fp32_process(recipe):
    # MODEL_PATH names a folder (here the tiny model's): the real recipe, which must follow the hardware.
    outdir, output = recipe(
        "real_on_cpu",
        "--save_strategy",
        "no",
        MODEL_PATH=str(recipe.model_dir),
        TRAIN_BSZ="4",
        GRAD_ACC="1",
        BLOCK_SIZE="128",
        LR="3e-3",
    )
    assert "1 node(s) x 1 process(es), precision fp32, DeepSpeed off, gradient checkpointing False" in output
    assert "torchrun" not in output and not noise_in(output.splitlines())
    assert (outdir / "adapter_model.safetensors").is_file()


def earlier_run(outdir):
    """What the default run leaves in its folder: adapter, checkpoint, report and log; returns the log line."""
    (outdir / "checkpoint-200").mkdir(parents=True)
    (outdir / "checkpoint-200" / "trainer_state.json").write_text("{}")
    (outdir / "adapter_model.safetensors").write_bytes(b"the earlier run's adapter")
    (outdir / REPORT_FILE).write_text(json.dumps({"aligned": True, "retrieval_after": {"retrieval_0_to_1": 0.91}}))
    (outdir / "train.log").write_text("the earlier run: SmolLM2-135M-Instruct, 2 epochs\n")
    return "the earlier run"


def test_overwrite_leaves_only_the_new_runs_results_and_log(recipe):
    outdir = recipe.model_dir.parent / "overwritten"
    earlier = earlier_run(outdir)
    outdir, output = recipe("overwritten", OVERWRITE="1")
    assert sorted(p.name for p in outdir.iterdir() if p.name.startswith("checkpoint-")) == []
    assert not (outdir / REPORT_FILE).exists()
    assert (outdir / "adapter_model.safetensors").read_bytes() != b"the earlier run's adapter"
    log = (outdir / "train.log").read_text()
    assert earlier not in log and "train_loss" in log and log.strip() in output  # the new run's output, whole


def test_overwrite_of_a_folder_with_a_users_file_is_refused_before_anything_changes(recipe):
    outdir = recipe.model_dir.parent / "with_notes"
    earlier_run(outdir)
    (outdir / "notes.txt").write_text("my notes")
    before = {p: p.read_bytes() for p in outdir.rglob("*") if p.is_file()}
    process, _ = recipe("with_notes", wait=False, OVERWRITE="1")
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 2 and "Traceback" not in output
    assert output.strip().splitlines()[-1].startswith(f"error: output folder {outdir} holds notes.txt")
    assert {p: p.read_bytes() for p in outdir.rglob("*") if p.is_file()} == before


def logged(outdir, name):
    """Every training log's ``name`` (task_loss, alignment_loss, grad_norm), in step order."""
    history = json.loads((outdir / "trainer_state.json").read_text())["log_history"]
    return [h[name] for h in history if "loss" in h and h.get(name) is not None]


# bf16 on CPU against fp32 over the first steps: bf16 keeps 8 bits of mantissa (relative rounding 2^-8 = 0.4% per
# operation), so each logged loss may differ by a few percent; measured on this tiny run (2026-12-04): at most
# 0.4% over the 4 steps.
BF16_LOSS_TOLERANCE = 0.03


def test_bf16_on_cpu_trains_finite_losses_close_to_fp32_and_saves_a_loadable_adapter(recipe, single):
    import math

    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    outdir, output = recipe("bf16", TRAIN_BSZ="4", PRECISION="bf16")
    assert "precision bf16" in output
    for name in ("task_loss", "alignment_loss"):
        got, want = logged(outdir, name), logged(single, name)
        assert len(got) == len(want) > 0 and all(math.isfinite(v) for v in got)
        assert got == pytest.approx(want, rel=BF16_LOSS_TOLERANCE)
    base = AutoModelForCausalLM.from_pretrained(recipe.model_dir, torch_dtype=torch.bfloat16)
    model = PeftModel.from_pretrained(base, outdir).eval()
    saved = load_file(outdir / "adapter_model.safetensors")
    loaded = {name: p for name, p in model.named_parameters() if "lora_" in name}
    assert len(loaded) == len(saved) > 0
    for key, tensor in saved.items():
        match = next(p for name, p in loaded.items() if name.replace(".default", "") == key)
        assert torch.equal(match.detach().to(tensor.dtype), tensor)
    assert any(float(t.abs().max()) > 0 for k, t in saved.items() if "lora_B" in k)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([[5, 6, 7, 8]])).logits
    assert torch.isfinite(logits.float()).all()


def test_gradient_checkpointing_with_the_early_exit_under_deepspeed_equals_without(recipe):
    # Alternate mode: the alignment steps stop at the aligned layer (the early exit), so checkpointing must
    # recompute a forward that ends there. One process under DeepSpeed ZeRO-2 (torchrun) both times.
    deepspeed = dict(TRAIN_BSZ="4", DEEPSPEED_CONFIG=str(REPO / "config/deepspeed_config_cpu.json"))
    plain, _ = recipe("zero2_plain", GRADIENT_CHECKPOINTING="False", **deepspeed)
    checkpointed, output = recipe("zero2_checkpointed", GRADIENT_CHECKPOINTING="True", **deepspeed)
    assert "gradient checkpointing True" in output and "DeepSpeed " in output
    assert_same_as(checkpointed, plain)
    assert logged(checkpointed, "grad_norm") == pytest.approx(logged(plain, "grad_norm"), abs=1e-5)
