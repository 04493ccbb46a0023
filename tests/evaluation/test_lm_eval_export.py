"""lm-eval export: YAML and data layout, and an exported task run through lm-eval's Python API on a tiny model."""

import json
from pathlib import Path

import pytest
import yaml

from scripts import export_lm_eval_tasks
from tests.support import REPO
from tests.support.models import make_model
from transformers_align.evaluation.icl import get_task, render
from transformers_align.evaluation.icl.evaluate import build_items, demonstrations, evaluate_icl, score_items

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # a tiny model: one thread is faster

DATA = REPO / "data_example" / "icl"


def rows(path):
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]


def test_export_layout(tmp_path):
    paths = export_lm_eval_tasks.main(
        [
            "--data-dir",
            str(DATA),
            "--output-dir",
            str(tmp_path),
            "--tasks",
            "pawsx,xnli",
            "--test-lang",
            "en,zh",
            "--seed",
            "3",
        ]
    )
    assert sorted(p.name for p in paths) == [
        "afp_pawsx_en-en.yaml",
        "afp_pawsx_en-zh.yaml",
        "afp_xnli_en-en.yaml",
        "afp_xnli_en-zh.yaml",
    ]
    config = yaml.safe_load((tmp_path / "afp_pawsx_en-zh.yaml").read_text(encoding="utf-8"))
    assert config["fewshot_delimiter"] == "</s>" and config["fewshot_config"] == {"sampler": "first_n"}
    assert yaml.safe_load((tmp_path / "afp_xnli_en-zh.yaml").read_text(encoding="utf-8"))["fewshot_delimiter"] == "\n\n"
    task = get_task("pawsx")
    dev = task.read(DATA / "pawsx/en/dev_2k.tsv")
    expected_dev = [render(task, r, "en") for r in demonstrations(dev, len(dev), 3)]
    assert rows(config["dataset_kwargs"]["data_files"]["validation"]) == [
        {"context": i.context, "choices": i.continuations, "label": i.label} for i in expected_dev
    ]
    test = rows(config["dataset_kwargs"]["data_files"]["test"])
    assert test[0]["context"] == render(task, task.read(DATA / "pawsx/zh/test_2k.tsv")[0], "en").context


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("task_name,ends_in_space", [("xstorycloze", False), ("xcopa", True)])
def test_exported_task_runs_in_lm_eval_and_matches_the_builtin_scorer(tmp_path, tokenizer, task_name, ends_in_space):
    """Same per-candidate log-likelihoods, acc and acc_norm in lm-eval and in eval_icl, also for XCOPA, whose
    context ends in a space (lm-eval scores that space with the continuation; so does eval_icl)."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    export_lm_eval_tasks.main(
        [
            "--data-dir",
            str(DATA),
            "--output-dir",
            str(tmp_path),
            "--tasks",
            task_name,
            "--test-lang",
            "zh",
            "--eos-text",
            tokenizer.eos_token,
        ]
    )
    model = make_model("llama")
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=8, add_bos_token=True)
    name, shots = f"afp_{task_name}_en-zh", 5
    out = simple_evaluate(
        model=lm,
        tasks=[name],
        num_fewshot=shots,
        log_samples=True,
        task_manager=TaskManager(include_path=str(tmp_path), include_defaults=False),
    )
    samples = sorted(out["samples"][name], key=lambda s: s["doc_id"])
    harness = [[ll for ll, _ in sample["filtered_resps"]] for sample in samples]

    task = get_task(task_name)
    demos = demonstrations(task.read(DATA / task.dev_file.format(lang="en")), shots, seed=0)
    items = build_items(task, demos, task.read(DATA / task.test_file.format(lang="zh")), "en", tokenizer.eos_token)
    assert all(item.context.endswith(" ") == ends_in_space for item in items)
    assert [sample["arguments"][0][0] for sample in samples] == [item.context for item in items]  # same prompts
    ours = score_items(model, tokenizer, items, progress=False)
    assert harness == [pytest.approx(scores, abs=1e-3) for scores in ours]

    # lm-eval's acc_norm, recomputed from its own log-likelihoods: argmax of ll / len(choice text).
    def accuracy(scores, normalise):
        picks = [
            max(range(len(s)), key=lambda k: s[k] / (len(i.continuations[k]) if normalise else 1))
            for s, i in zip(scores, items)
        ]
        return sum(pick == item.label for pick, item in zip(picks, items)) / len(items)

    report = evaluate_icl(model, tokenizer, DATA, [task_name], [shots], "en", ["zh"], progress=False)["results"][0]
    assert out["results"][name]["acc,none"] == pytest.approx(accuracy(harness, False)) == pytest.approx(report["acc"])
    assert (
        out["results"][name]["acc_norm,none"]
        == pytest.approx(accuracy(harness, True))
        == pytest.approx(report["acc_norm"])
    )
