"""The end-of-run report of an alignment run: retrieval at L before and after, chance level, task result, and
what the adapter costs the model's general ability (``evaluation.general_ability``).

Retrieval is top-1 over held-out pairs at the layer and pooling the adapter was trained with (its run
record), on the base model (before) and with the adapter (after). The task result is MASSIVE slot
filling (slot micro-F1, slot-sequence exact match, intent scores: ``evaluation.massive.DEFINITIONS``)
by greedy generation with the adapter, in each language asked for: English is the trained language,
the others are zero-shot transfer.
"""

import re
from pathlib import Path
from typing import Dict, Sequence

from transformers_align.data.jsonl import read_json, write_json
from transformers_align.data.massive import has_intents, load_massive, massive_prompts
from transformers_align.evaluation.alignment_analysis import analysis_settings, metrics_at_layer, read_pairs
from transformers_align.evaluation.general_ability import ability_cost, format_ability_cost, general_ability
from transformers_align.evaluation.generation import generate_greedy, load_model_and_tokenizer
from transformers_align.evaluation.massive import MASSIVE_MAX_NEW_TOKENS, score_predictions
from transformers_align.paths import refuse_output_over_inputs
from transformers_align.training.checkpoints import REPORT_FILE, RUN_ARGS_FILE

# Held-out retrieval that counts as "the representations are aligned" in the verdict line.
ALIGNED_RETRIEVAL = 0.9


def pair_languages(pairs_file) -> Sequence[str]:
    """``("en", "fr")`` from a name like ``en-fr.test.tsv``; ``("side 0", "side 1")`` otherwise."""
    match = re.match(r"([A-Za-z_]+)-([A-Za-z_]+)\.", Path(pairs_file).name)
    return (match.group(1).upper(), match.group(2).upper()) if match else ("side 0", "side 1")


def alignment_run_report(
    base_model,
    adapter_dir,
    pairs_file,
    massive_dir="data_example/massive",
    task_languages: Sequence[str] = ("en", "fr"),
    partition: str = "test",
    batch_size: int = 16,
    max_new_tokens: int = MASSIVE_MAX_NEW_TOKENS,
    device=None,
) -> Dict:
    """The report as a dict (also written to ``adapter_dir/alignment_report.json``). Inputs are read first."""
    refuse_output_over_inputs(
        {"--adapter": Path(adapter_dir) / REPORT_FILE},
        {"--pairs": pairs_file, "--massive_dir": massive_dir, "--model_name_or_path": base_model},
    )
    pairs = read_pairs(pairs_file)
    task_records = {lang: load_massive(lang, partition, data_dir=massive_dir) for lang in task_languages}
    if not (Path(adapter_dir) / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{adapter_dir}: no adapter_config.json (give the OUTDIR of a LoRA training run)")
    model, tokenizer = load_model_and_tokenizer(str(base_model), None, device)
    settings = analysis_settings(model, adapter_dir)
    before = metrics_at_layer(model, tokenizer, pairs, settings, batch_size)
    ability_before = general_ability(model, tokenizer)
    from peft import PeftModel

    model = PeftModel.from_pretrained(model, str(adapter_dir)).eval()
    after = metrics_at_layer(model, tokenizer, pairs, settings, batch_size)
    ability_after = general_ability(model, tokenizer)
    task = {}
    for lang, records in task_records.items():
        prompts = massive_prompts(records, tokenizer, with_intent=has_intents(records))
        predictions = generate_greedy(model, tokenizer, prompts, batch_size, max_new_tokens, desc=f"MASSIVE {lang}")
        scores = score_predictions(records, {record.id: text for record, text in zip(records, predictions)})
        task[lang] = {**scores.as_json(), "examples": len(records)}
    record = Path(adapter_dir) / RUN_ARGS_FILE
    report = {
        "base_model": str(base_model),
        "adapter": str(adapter_dir),
        # "task": a baseline without the alignment objective, reported the same way to compare with
        "training_mode": read_json(record).get("training_mode") if record.is_file() else None,
        "pairs_file": str(pairs_file),
        "languages": list(pair_languages(pairs_file)),
        "pairs": len(pairs),
        "chance": 1 / len(pairs),
        "layer": settings.additional_loss_layer,
        "pooling": settings.contrastive_pooling_type,
        "skip_first": settings.contrastive_pooling_skip_first,
        "retrieval_before": before,
        "retrieval_after": after,
        "task": {"name": f"MASSIVE {partition} slot filling", "data": str(massive_dir), "scores": task},
        "general_ability": ability_cost(ability_before, ability_after),
    }
    report["aligned"] = after["retrieval_0_to_1"] >= ALIGNED_RETRIEVAL
    write_json(Path(adapter_dir) / REPORT_FILE, report)
    return report


def format_run_report(report: Dict) -> str:
    """A few lines for people: retrieval before/after against chance, the task scores, the verdict."""
    source, target = report["languages"]
    before, after = report["retrieval_before"], report["retrieval_after"]
    lines = [
        f"Held-out {source}-{target} pairs: {report['pairs']} ({report['pairs_file']}); layer {report['layer']}, "
        f"{report['pooling']} pooling, first {report['skip_first']} token(s) left out",
        f"  top-1 retrieval {source}->{target}: {before['retrieval_0_to_1']:.2f} before -> "
        f"{after['retrieval_0_to_1']:.2f} after (chance {report['chance']:.3f})",
        f"  top-1 retrieval {target}->{source}: {before['retrieval_1_to_0']:.2f} before -> "
        f"{after['retrieval_1_to_0']:.2f} after",
        f"  cosine true/random pairs: {before['cosine_true']:.3f}/{before['cosine_random']:.3f} before -> "
        f"{after['cosine_true']:.3f}/{after['cosine_random']:.3f} after",
        f"{report['task']['name']} with the adapter ({report['task']['data']}):",
    ]
    for lang, scores in report["task"]["scores"].items():
        intents = (
            "intents not scored"
            if scores["intent_accuracy"] is None
            else f"intent accuracy {scores['intent_accuracy']:.2f}, intent+slots exact match "
            f"{scores['exact_match_with_intent']:.2f}"
        )
        lines.append(
            f"  {lang}: slot F1 {scores['slot_micro_f1']:.2f}, slot exact match {scores['exact_match']:.2f}, "
            f"{intents} ({scores['examples']} utterances)"
        )
    lines += format_ability_cost(report["general_ability"])
    figures = (
        f"{source}->{target} top-1 {after['retrieval_0_to_1']:.2f} (before {before['retrieval_0_to_1']:.2f}, "
        f"chance {report['chance']:.3f})."
    )
    if report.get("training_mode") == "task":
        lines.append(f"Task-only run (no alignment objective), retrieval at layer {report['layer']}: {figures}")
    else:
        verdict = "reached" if report["aligned"] else "did NOT reach"
        lines.append(
            f"Alignment {verdict} the {ALIGNED_RETRIEVAL:.0%} held-out retrieval mark at layer {report['layer']}: "
            + figures
        )
    return "\n".join(lines)
