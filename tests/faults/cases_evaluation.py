"""Fault cases of the evaluation and inference scripts: predictions, gold data, model and adapter folders, outputs
over inputs. Adapters are written directly (tests/support/adapters.py); only the well-behaved inference case
loads the tiny model."""

import json
from pathlib import Path

from tests.faults.harness import FaultCase, python_module
from tests.support import REPO
from tests.support.adapters import write_lora

GOLD = REPO / "data_example" / "massive" / "en-US.jsonl"


def gold_records(locale="en-US", partition="test"):
    rows = [json.loads(line) for line in GOLD.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row for row in rows if row["locale"] == locale and row["partition"] == partition]


def write_predictions(tmp: Path, _tiny: Path, keep=None) -> None:
    """Predictions for the en-US test records (the first ``keep``): their gold annotations."""
    rows = gold_records()[:keep]
    lines = [
        json.dumps({"id": row["id"], "locale": row["locale"], "prediction": _answer(row["annot_utt"])}) for row in rows
    ]
    (tmp / "pred.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _answer(annot_utt: str) -> str:
    from transformers_align.data.massive import MassiveRecord, format_target

    record = MassiveRecord(id="0", locale="en-US", partition="test", utt="", annot_utt=annot_utt)
    return format_target(record.slots)


def files(**contents):
    """``setup`` writing text files into the case's folder (name -> text)."""

    def setup(tmp: Path, _tiny: Path) -> None:
        for name, text in contents.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_text(text, encoding="utf-8")

    return setup


def adapter(base_name=None, **extra_files):
    """``setup`` writing a LoRA adapter on the tiny model into {tmp}/adapter (its config naming ``base_name``)."""

    def setup(tmp: Path, tiny: Path) -> None:
        write_lora(tmp / "adapter", tiny, base_name=base_name)
        files(**extra_files)(tmp, tiny)

    return setup


def truncated_model(tmp: Path, tiny: Path) -> None:
    (tmp / "model").mkdir()
    (tmp / "model" / "config.json").write_text((tiny / "config.json").read_text()[:60])


def evaluate(*extra):
    return python_module("eval_massive", "--pred_slots_file", "{tmp}/pred.jsonl", *extra)


def infer(*extra):
    return python_module("run_inference_massive", "--output_file", "{tmp}/out.jsonl", *extra)


CASES = [
    FaultCase(
        name="eval_massive with an unknown --lang",
        area="evaluation",
        command=evaluate("--lang", "xx"),
        cause=r"--lang xx: unknown language 'xx'.*de-DE",
        setup=write_predictions,
    ),
    FaultCase(
        name="eval_massive with an unknown --partition",
        area="evaluation",
        command=evaluate("--partition", "testing"),
        cause=r"--partition testing: use one of train, dev, test",
        setup=write_predictions,
    ),
    FaultCase(
        name="eval_massive without the predictions file",
        area="evaluation",
        command=evaluate(),
        cause=r"--pred_slots_file .*pred\.jsonl: no such file",
    ),
    FaultCase(
        name="eval_massive with malformed predictions",
        area="evaluation",
        command=evaluate(),
        cause=r"pred\.jsonl:2",
        setup=files(**{"pred.jsonl": '{"id": "0", "prediction": "None"}\n{"id": "1", "prediction": \n'}),
    ),
    FaultCase(
        name="eval_massive with predictions lacking the id field",
        area="evaluation",
        command=evaluate(),
        cause=r"pred\.jsonl:1.*'id'",
        setup=files(**{"pred.jsonl": '{"prediction": "None"}\n'}),
    ),
    FaultCase(
        name="eval_massive with predictions missing for some utterances",
        area="evaluation",
        command=evaluate(),
        cause=r"--allow_missing",
        setup=lambda tmp, tiny: write_predictions(tmp, tiny, keep=3),
    ),
    FaultCase(
        name="eval_massive with predictions of another language",
        area="evaluation",
        command=evaluate("--lang", "fr"),
        cause=r"pred\.jsonl:1: field 'locale' is 'en-US', evaluating fr-FR",
        setup=write_predictions,
    ),
    FaultCase(
        name="eval_massive --output_json over its predictions",
        area="evaluation",
        command=evaluate("--output_json", "{tmp}/pred.jsonl"),
        cause=r"--output_json .*pred\.jsonl is the --pred_slots_file input",
        setup=write_predictions,
    ),
    FaultCase(
        name="eval_massive --output_json a folder",
        area="evaluation",
        command=evaluate("--output_json", "{tmp}/results"),
        cause=r"--output_json .*results is a folder",
        setup=lambda tmp, tiny: [write_predictions(tmp, tiny), files(**{"results/keep.txt": "mine\n"})(tmp, tiny)],
    ),
    FaultCase(
        name="eval_massive --data_file without the locale",
        area="evaluation",
        command=evaluate("--data_file", str(GOLD), "--lang", "fr"),
        cause=r"en-US\.jsonl: no records for locale fr-FR",
        setup=write_predictions,
    ),
    FaultCase(
        name="eval_massive --max_examples 0",
        area="evaluation",
        command=evaluate("--max_examples", "0"),
        cause=r"--max_examples 0: must be at least 1",
        setup=write_predictions,
    ),
    FaultCase(
        name="well-behaved eval_massive",
        area="evaluation",
        command=evaluate("--output_json", "{tmp}/metrics.json"),
        cause=r"",
        setup=write_predictions,
        exit_code=0,
        may_create=("metrics.json",),
    ),
    FaultCase(
        name="run_inference_massive --output_file over its --data_file",
        area="evaluation",
        command=python_module(
            "run_inference_massive",
            "--model_name_or_path",
            "{tiny}",
            "--data_file",
            "{tmp}/gold.jsonl",
            "--output_file",
            "{tmp}/gold.jsonl",
        ),
        cause=r"--output_file .*gold\.jsonl is the --data_file input",
        setup=files(**{"gold.jsonl": GOLD.read_text(encoding="utf-8")}),
    ),
    FaultCase(
        name="run_inference_massive without a model",
        area="evaluation",
        command=infer(),
        cause=r"required: --model_name_or_path.*--peft_model_id",
    ),
    FaultCase(
        name="run_inference_massive with a missing model folder",
        area="evaluation",
        command=infer("--model_name_or_path", "{tmp}/no-model"),
        cause=r"--model_name_or_path .*no-model: no such folder",
    ),
    FaultCase(
        name="run_inference_massive with a truncated config.json",
        area="evaluation",
        command=infer("--model_name_or_path", "{tmp}/model"),
        cause=r"--model_name_or_path .*model: .*config\.json is not valid JSON",
        setup=truncated_model,
    ),
    FaultCase(
        name="run_inference_massive with an adapter as the model",
        area="evaluation",
        command=infer("--model_name_or_path", "{tmp}/adapter"),
        cause=r"has no config\.json.*an adapter, not a base model",
        setup=adapter(),
    ),
    FaultCase(
        name="run_inference_massive with a folder that is not an adapter",
        area="evaluation",
        command=infer("--peft_model_id", "{tmp}/notes"),
        cause=r"--peft_model_id .*notes has no adapter_config\.json",
        setup=files(**{"notes/readme.txt": "mine\n"}),
    ),
    FaultCase(
        name="run_inference_massive with an adapter whose base is elsewhere",
        area="evaluation",
        command=infer("--peft_model_id", "{tmp}/adapter"),
        cause=r"names the base model '/nowhere/base'.*pass --model_name_or_path",
        setup=adapter(base_name="/nowhere/base"),
    ),
    FaultCase(
        name="run_inference_massive with an unknown --lang",
        area="evaluation",
        command=infer("--model_name_or_path", "{tiny}", "--lang", "klingon"),
        cause=r"--lang klingon: unknown language",
    ),
    FaultCase(
        name="run_inference_massive --max_new_tokens 0",
        area="evaluation",
        command=infer("--model_name_or_path", "{tiny}", "--max_new_tokens", "0"),
        cause=r"--max_new_tokens 0: must be at least 1",
    ),
    FaultCase(
        name="run_inference_massive --output_file a folder",
        area="evaluation",
        command=python_module("run_inference_massive", "--model_name_or_path", "{tiny}", "--output_file", "{tmp}"),
        cause=r"--output_file .* is a folder",
    ),
    FaultCase(
        name="well-behaved run_inference_massive with the base from the adapter",
        area="evaluation",
        command=infer("--peft_model_id", "{tmp}/adapter", "--max_examples", "1", "--max_new_tokens", "2"),
        cause=r"",
        setup=adapter(),
        exit_code=0,
        may_create=("out.jsonl",),
    ),
    FaultCase(
        name="eval_mgsm without its --data file",
        area="evaluation",
        command=python_module("eval_mgsm", "--model_name_or_path", "{tiny}", "--data", "{tmp}/mgsm_de.tsv"),
        cause=r"--data .*mgsm_de\.tsv: no such file",
    ),
    FaultCase(
        name="wmt --evaluation_only without translations",
        area="evaluation",
        command=python_module(
            "run_inference_eval_wmt23",
            "--evaluation_only",
            "--output_file",
            "{tmp}/wmt.jsonl",
            "--metrics_file",
            "{tmp}/metrics.json",
        ),
        cause=r"--output_file .*wmt\.jsonl: no such file",
    ),
    FaultCase(
        name="eval_icl with an unknown task",
        area="evaluation",
        command=python_module("eval_icl", "--model_name_or_path", "{tiny}", "--tasks", "xnli,squad"),
        cause=r"--tasks squad: unknown ICL task",
    ),
    FaultCase(
        name="report_alignment_run without its pairs",
        area="evaluation",
        command=python_module("report_alignment_run", "--adapter", "{tmp}/adapter", "--pairs", "{tmp}/en-fr.test.tsv"),
        cause=r"--pairs .*en-fr\.test\.tsv: no such file",
        setup=adapter(),
    ),
    FaultCase(
        name="prepare_smollm2 --output_dir a file",
        area="evaluation",
        command=python_module("prepare_smollm2", "--output_dir", "{tmp}/model.txt"),
        cause=r"--output_dir .*model\.txt is a file",
        setup=files(**{"model.txt": "mine\n"}),
    ),
]
