"""The AFP recipe: AFP records as training rows, and scripts/train_afp.sh end to end on tiny XGLM / BLOOM."""

import json
import os
import subprocess

import pytest

from tests.support import REPO
from tests.support.processes import start, wait_all
from transformers_align.data.features import FeatureOptions, read_rows, tokenize_rows

pytestmark = pytest.mark.slow  # end to end: a script, torchrun or a real model


def test_afp_records_mask_the_prompt_by_characters_and_end_with_eos(tmp_path, tokenizer):
    path = tmp_path / "afp.json"
    record = {
        "sent0": "Good morning",
        "sent1": "早上好",
        "clm_text": "Say hi. Answer in Chinese: 你好",
        "clm_prompt_len": 27,
    }
    path.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    rows = read_rows([path], "afp")
    assert rows[0]["prefix"] == "Say hi. Answer in Chinese: " and rows[0]["text"] == "你好"
    feature = tokenize_rows(tokenizer, rows, FeatureOptions(block_size=128))[0]
    answer = tokenizer("你好", add_special_tokens=False).input_ids + [tokenizer.eos_token_id]
    assert [t for t in feature["labels"] if t != -100] == answer
    assert feature["input_ids_parallel_1"] == tokenizer("早上好").input_ids


# The two end-to-end runs: full fine-tuning of a tiny XGLM with ICL after it, LoRA on a tiny BLOOM with mean pooling.
RUNS = {
    "xglm": dict(ICL_TASKS="xcopa", ICL_LANGS="zh"),
    "bloom": dict(TINY_MODEL_TYPE="bloom", USE_LORA="True", POOLER="avg-2", ICL_DATA_DIR=""),
}


@pytest.fixture(scope="module")
def recipes(tmp_path_factory):
    """Both runs of scripts/train_afp.sh started at once (one thread each, independent folders and tiny models):
    name -> (its folder, its stdout)."""
    root = tmp_path_factory.mktemp("afp")
    processes = {}
    for name, variables in RUNS.items():
        folder = root / name
        folder.mkdir()
        env = dict(
            os.environ,
            MODEL_PATH="tiny",
            OUTDIR=str(folder / "out"),
            TINY_MODEL_DIR=str(folder / "tiny"),
            OMP_NUM_THREADS="1",
            MAX_STEPS="3",
            LOGGING_STEPS="1",
            HF_DATASETS_CACHE=str(folder / "datasets-cache"),
            **variables,
        )
        with open(folder / "stdout", "w") as stdout, open(folder / "stderr", "w") as stderr:  # files: no pipe fills
            processes[name] = start(["bash", str(REPO / "scripts/train_afp.sh")], env=env, stdout=stdout, stderr=stderr)
    wait_all(processes.values(), timeout=900)
    for name, process in processes.items():
        output = (root / name / "stdout").read_text()[-3000:] + (root / name / "stderr").read_text()[-3000:]
        assert process.returncode == 0, f"{name}: {output}"
    return {name: (root / name, (root / name / "stdout").read_text()) for name in RUNS}


def test_full_fine_tuning_on_xglm_saves_a_tied_model_and_runs_icl(recipes):
    folder, stdout = recipes["xglm"]
    assert "'task_loss'" in stdout and "'alignment_loss'" in stdout
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder / "out")
    assert model.config.model_type == "xglm" and model.config.contrastive_pooling_type == "last"
    assert model.config.additional_loss_layer == 1 and model.config.task_loss_weight == 1.5
    # AFP saved a separate, untied lm_head that a reload then overwrote; here the head is the embedding.
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    results = json.loads((folder / "out/icl_results.json").read_text())
    assert "xcopa" in json.dumps(results)


def test_lora_on_bloom_with_mean_pooling(recipes):
    folder, stdout = recipes["bloom"]
    assert "'alignment_loss'" in stdout
    assert (folder / "out/adapter_model.safetensors").is_file() and not (folder / "out/icl_results.json").exists()


def test_bad_pooler_is_rejected(tmp_path):
    env = dict(os.environ, OUTDIR=str(tmp_path / "out"), POOLER="cls")
    result = subprocess.run(
        ["bash", str(REPO / "scripts/train_afp.sh")], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "expected (last|avg|max)-N" in result.stderr
