"""Export the ICL tasks as lm-evaluation-harness 0.4.x task YAMLs over local JSON Lines files.

Each (task, test language) becomes ``afp_{task}_{prompt}-{test}``: ``dataset_path: json`` with a
``test`` split (the test file rendered with the prompt language's template) and a ``validation``
split (the prompt language's dev file, rendered the same way and stored in the seeded order of
``icl.evaluate.demonstrations``). With ``fewshot_config.sampler: first_n`` the harness then shows the
same k demonstrations to every item, as ``scripts.eval_icl`` does. Records are pre-rendered
``{"context", "choices", "label"}``, with ``target_delimiter: ""`` (the choice text carries what
follows it) and the task's connector as ``fewshot_delimiter``. Run with
``lm_eval --include_path DIR --tasks afp_icl`` (a tag holding every exported task) and, to put
BOS in front as the built-in evaluator does, ``--model_args ...,add_bos_token=True``.
"""

from pathlib import Path
from typing import List, Sequence

import yaml

from transformers_align.data.jsonl import write_atomic, write_jsonl
from transformers_align.evaluation.icl.evaluate import demonstrations
from transformers_align.evaluation.icl.tasks import get_task, render

TAG = "afp_icl"


def task_name(task: str, prompt_lang: str, test_lang: str) -> str:
    return f"afp_{task}_{prompt_lang}-{test_lang}"


def _rendered(task, records, prompt_lang: str) -> List[dict]:
    rows = []
    for record in records:
        item = render(task, record, prompt_lang)
        rows.append({"context": item.context, "choices": item.continuations, "label": item.label})
    return rows


def task_config(name: str, task: str, dev_file: Path, test_file: Path, connector: str) -> dict:
    """The lm-eval task config of one exported task (multiple choice, accuracy and length-normalised accuracy)."""
    return {
        "task": name,
        "tag": [TAG, f"afp_{task}"],
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"validation": str(dev_file), "test": str(test_file)}},
        "validation_split": "validation",
        "test_split": "test",
        "fewshot_split": "validation",
        "fewshot_config": {"sampler": "first_n"},
        "output_type": "multiple_choice",
        "doc_to_text": "context",
        "doc_to_choice": "choices",
        "doc_to_target": "label",
        "target_delimiter": "",
        "fewshot_delimiter": connector,
        "metric_list": [
            {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
            {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True},
        ],
        "metadata": {"version": 1.0},
    }


def export_tasks(
    data_dir,
    output_dir,
    tasks: Sequence[str],
    prompt_lang: str,
    test_langs: Sequence[str],
    seed: int = 0,
    eos_text: str = "</s>",
) -> List[Path]:
    """Write ``data/*.jsonl`` and one YAML per (task, test language) into ``output_dir``; returns the YAML paths.

    ``eos_text`` is written where AFP separates demonstrations with the EOS token: use the EOS text of the
    tokenizer that will be evaluated ("</s>" for XGLM and BLOOM, as AFP).
    """
    data_dir, output_dir = Path(data_dir), Path(output_dir).resolve()
    written = []
    for task in map(get_task, tasks):
        dev = task.read(data_dir / task.dev_file.format(lang=prompt_lang))
        dev_file = write_jsonl(
            output_dir / "data" / f"{task.name}.{prompt_lang}.dev.seed{seed}.jsonl",
            _rendered(task, demonstrations(dev, len(dev), seed), prompt_lang),
        )
        connector = task.connector if task.connector is not None else eos_text
        for test_lang in test_langs:
            tests = task.read(data_dir / task.test_file.format(lang=test_lang))
            test_file = write_jsonl(
                output_dir / "data" / f"{task.name}.{test_lang}.test.prompt-{prompt_lang}.jsonl",
                _rendered(task, tests, prompt_lang),
            )
            name = task_name(task.name, prompt_lang, test_lang)
            config = task_config(name, task.name, dev_file, test_file, connector)
            written.append(
                write_atomic(output_dir / f"{name}.yaml", yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
            )
    return written
