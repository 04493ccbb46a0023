"""scripts/train_adamergex.sh end to end on the embedded default, LoRA and IA3: data, adapters, merge
wiring, metrics."""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.support import REPO
from tests.support.processes import start, wait_all
from transformers_align.tiny import build_tiny_model

pytestmark = pytest.mark.slow  # end to end: a script, torchrun or a real model

SCRIPT = REPO / "scripts" / "train_adamergex.sh"
SMALL = dict(
    MODEL_PATH="tiny",
    MAX_STEPS="2",
    MGSM_MAX_EXAMPLES="4",
    MAX_NEW_TOKENS="16",
    EVAL_BSZ="4",
    OMP_NUM_THREADS="1",
    MKL_NUM_THREADS="1",
    HF_HUB_OFFLINE="1",
    TRANSFORMERS_OFFLINE="1",
    HF_DATASETS_OFFLINE="1",
)
# the recipe's variables set in this shell must not leak into the tests (MODEL_PATH would start the real recipe)
CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in set(re.findall(r"\$\{(\w+):?-", SCRIPT.read_text()))}
# LoRA: the default languages (en -> sw) and MGSM, for the task adapter too. IA3: a character-level target
# language (zh) with MASSIVE and ICL instead of MGSM (there is no Chinese MGSM sample; an empty MGSM_FILE skips it).
RUNS = {
    "lora": dict(ADAPTER="lora", T="0.5"),
    "ia3": dict(
        ADAPTER="ia3",
        T="1.0",
        TARGET_LANG="zh",
        EVAL_ADAPTERS="merged",
        MGSM_FILE="",
        MASSIVE_DIR=str(REPO / "data_example/massive"),
        MASSIVE_MAX_EXAMPLES="2",
        ICL_DATA_DIR=str(REPO / "data_example/icl"),
        ICL_TASKS="xcopa",
        ICL_SHOTS="0",
    ),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Both recipes, run at the same time (one thread each) on one tiny model built beforehand."""
    root = tmp_path_factory.mktemp("adamergex")
    tiny = build_tiny_model(root / "tiny")  # the scripts find it built and reuse it, so they never race on it
    processes = {}
    for name, variables in RUNS.items():
        log = open(root / f"{name}.log", "w")
        env = dict(CLEAN_ENV, **SMALL, **variables, TINY_MODEL_DIR=str(tiny), OUTDIR=str(root / name))
        env["HF_DATASETS_CACHE"] = str(root / f"{name}-datasets-cache")  # CLEAN_ENV was read before conftest set it
        processes[name] = (start(["bash", str(SCRIPT)], env=env, stdout=log, stderr=subprocess.STDOUT), log)
    try:
        wait_all([process for process, _ in processes.values()], timeout=600)  # a timeout ends both recipes
    finally:
        for _, log in processes.values():
            log.close()
    for name, (process, _) in processes.items():
        assert process.returncode == 0, f"{name} recipe failed:\n{(root / f'{name}.log').read_text()[-4000:]}"
    return root, tiny


def adapter(folder):
    return json.loads((folder / "adapter_config.json").read_text()), load_file(folder / "adapter_model.safetensors")


def lora_deltas(folder):
    """ΔW = (alpha / r) · B @ A per module, from the adapter files alone."""
    config, tensors = adapter(folder)
    scaling = config["lora_alpha"] / config["r"]
    return {
        key[: -len(".lora_A.weight")]: scaling * tensors[key.replace("lora_A", "lora_B")] @ a
        for key, a in tensors.items()
        if key.endswith(".lora_A.weight")
    }


def differs(a, b):
    return any(not torch.allclose(a[key], b[key], atol=1e-7) for key in a)


def test_lora_merge_is_task_plus_t_times_target_minus_source(runs):
    out = runs[0] / "lora"
    task, tgt, src, merged = (lora_deltas(out / name) for name in ("task", "ref_target", "ref_source", "merged"))
    assert differs(tgt, src) and differs(merged, task)
    for module, delta in merged.items():  # T=0.5, and the target/source roles not swapped
        torch.testing.assert_close(delta, task[module] + 0.5 * (tgt[module] - src[module]), atol=1e-6, rtol=1e-5)
    assert adapter(out / "merged")[0]["r"] == 24  # exact delta rule: r1 + r2 + r3
    report = json.loads((out / "merged/merge_report.json").read_text())
    assert report["t"] == 0.5 and report["method"] == "delta"


def test_ia3_merge_is_the_ratio_rule(runs):
    out = runs[0] / "ia3"
    (config, merged), (_, task), (_, tgt), (_, src) = (
        adapter(out / n) for n in ("merged", "task", "ref_target", "ref_source")
    )
    assert config["peft_type"] == "IA3" and differs(tgt, src) and differs(merged, task)
    for key, vector in merged.items():
        torch.testing.assert_close(vector, task[key] * (1 + (tgt[key] / src[key] - 1)))


@pytest.mark.parametrize("name, target", [("lora", "sw"), ("ia3", "zh")])
def test_each_adapter_trained_on_its_own_data_in_task_mode(runs, name, target):
    out = runs[0] / name
    trained_on = {}
    for folder in ("task", "ref_source", "ref_target"):
        arguments = json.loads((out / folder / "alignment_run_args.json").read_text())
        assert arguments["training_mode"] == "task"
        trained_on[folder] = Path(arguments["data"]["train_file"]).name
    assert trained_on == {"task": "task_en.json", "ref_source": "ref_en.json", "ref_target": f"ref_{target}.json"}
    records = json.loads((out / f"data/ref_{target}.json").read_text())
    raw = (REPO / f"data_example/adamergex/wiki/{target}.txt").read_text(encoding="utf-8")
    assert records and all(r["prompt"] == "" for r in records)  # PROMPT_UNITS=0: the loss covers the whole window
    assert records[0]["completion"][:40] in raw
    if target == "zh":  # character windows: 64 characters each
        assert all(len(r["completion"]) == 64 for r in records)


def test_merged_adapters_load_and_change_the_model(runs):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    root, tiny = runs
    ids = torch.tensor([[1, 72, 101, 108, 108, 111, 32, 119]])
    for name in RUNS:
        logits = {}
        for folder in ("task", "merged"):
            model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny), root / name / folder).eval()
            with torch.no_grad():
                logits[folder] = model(ids).logits
        assert torch.isfinite(logits["merged"]).all()
        assert not torch.allclose(logits["merged"], logits["task"])


def test_metrics_are_written_for_every_evaluated_adapter(runs):
    root = runs[0]
    for folder in ("merged", "task"):
        evaluated = root / "lora" / "eval" / folder
        metrics = json.loads((evaluated / "mgsm_sw.json").read_text())
        assert set(metrics) == {"accuracy", "correct", "parse_failures", "counts"}
        assert metrics["counts"] == {
            "total": 4,
            "scored": 4,
            "missing": 0,
            "skipped": 6,  # 10 problems, 4 evaluated
            "skipped_by_reason": {"beyond --max_examples": 6},
        }
        assert 0 <= metrics["accuracy"] <= 1
        assert len((evaluated / "mgsm_sw.predictions.jsonl").read_text().splitlines()) == 4
    ia3 = root / "ia3" / "eval" / "merged"
    assert not list(ia3.glob("mgsm_*"))  # MGSM_FILE empty
    massive = json.loads((ia3 / "massive_zh.json").read_text())
    assert "slot_micro_f1" in massive  # scored on the 2 utterances inferred (MASSIVE_MAX_EXAMPLES), none missing
    assert (massive["counts"]["total"], massive["counts"]["missing"]) == (2, 0)
    assert len((ia3 / "massive_zh.predictions.jsonl").read_text().splitlines()) == 2
    icl = json.loads((ia3 / "icl_zh.json").read_text())
    assert icl["settings"]["peft_model_id"].endswith("merged")
    assert not (root / "lora" / "eval" / "merged" / "massive_sw.json").exists()  # MASSIVE only when MASSIVE_DIR is set


@pytest.mark.parametrize(
    "variables, message", [(dict(ADAPTER="prefix"), "use lora or ia3"), (dict(TARGET_LANG="en"), "both en")]
)
def test_bad_variables_stop_before_any_work(tmp_path, variables, message):
    env = dict(CLEAN_ENV, **variables, OUTDIR=str(tmp_path / "out"))
    result = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and message in result.stderr
    assert not (tmp_path / "out").exists()
