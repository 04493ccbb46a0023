"""Cross-lingual in-context learning: demonstrations in the prompt language, tests in the test language.

For each task, test language and shot count: k demonstrations are the first k of the prompt language's
dev file shuffled with ``random.Random(seed)`` (the same for every test item, as in AFP); each is the
rendered record with its right answer, followed by the task's connector. Every candidate is scored by
the summed log-probability of its continuation given demonstrations + context (``acc``), and also
divided by the candidate text's length in characters (``acc_norm``); the arg-max (first on ties) is the
prediction. As in lm-eval, the context's trailing whitespace is scored with the continuation (see
``loglikelihood.encode_pair``), so ``acc_norm`` equals lm-eval's on the exported tasks.
"""

import random
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import mean
from typing import Dict, List, Sequence

from transformers_align.data.records import SkipCounter
from transformers_align.errors import UserError
from transformers_align.evaluation.counts import EvaluationCounts
from transformers_align.evaluation.icl.tasks import Item, Task, get_task, render
from transformers_align.evaluation.loglikelihood import continuation_logprobs, encode_pair


@dataclass
class ICLResult:
    task: str
    prompt_lang: str
    test_lang: str
    shots: int
    n: int
    acc: float
    acc_norm: float
    counts: dict  # EvaluationCounts.as_json(): n scored, and the test records the reader skipped


def demonstrations(records: Sequence[dict], shots: int, seed: int) -> List[dict]:
    """The first ``shots`` records of the dev set shuffled with ``seed``: the same demos for every test item."""
    if shots > len(records):
        raise UserError(
            f"--shots {shots}: {shots} demonstrations asked for, but the dev file has only {len(records)} records"
        )
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    return [records[i] for i in order[:shots]]


def connector_text(task: Task, tokenizer) -> str:
    """What follows each demonstration: the task's connector, or the tokenizer's EOS token (newline without one)."""
    if task.connector is not None:
        return task.connector
    return tokenizer.eos_token or "\n"


def build_items(
    task: Task, demos: Sequence[dict], tests: Sequence[dict], prompt_lang: str, connector: str
) -> List[Item]:
    """Test items whose context starts with the rendered demonstrations (AFP's few-shot prompt)."""
    prefix = "".join(render(task, demo, prompt_lang).demonstration + connector for demo in demos)
    items = [render(task, record, prompt_lang) for record in tests]
    return [Item(prefix + item.context, item.continuations, item.label) for item in items]


def score_items(
    model, tokenizer, items: Sequence[Item], batch_size: int = 8, progress: bool = True, desc: str = "scoring"
) -> List[List[float]]:
    """Summed continuation log-probabilities, one list of candidate scores per item."""
    requests = [encode_pair(tokenizer, item.context, candidate) for item in items for candidate in item.continuations]
    flat = continuation_logprobs(model, requests, batch_size=batch_size, progress=progress, desc=desc)
    scores, start = [], 0
    for item in items:
        scores.append(flat[start : start + len(item.continuations)])
        start += len(item.continuations)
    return scores


def predictions(items: Sequence[Item], scores: Sequence[Sequence[float]], length_normalize: bool = False) -> List[int]:
    """Index of the best candidate per item (per character of the continuation with ``length_normalize``)."""
    chosen = []
    for item, values in zip(items, scores):
        if length_normalize:
            values = [value / len(text) for value, text in zip(values, item.continuations)]
        chosen.append(max(range(len(values)), key=values.__getitem__))
    return chosen


def _accuracy(items: Sequence[Item], chosen: Sequence[int]) -> float:
    return sum(pick == item.label for item, pick in zip(items, chosen)) / len(items)


def averages(results: Sequence[dict], metric: str = "acc") -> Dict[str, float]:
    """Mean ``metric`` per shot count (``"0-shot"``, ...) and over everything (``"all"``)."""
    summary = {
        f"{k}-shot": mean(r[metric] for r in results if r["shots"] == k) for k in sorted({r["shots"] for r in results})
    }
    summary["all"] = mean(r[metric] for r in results)
    return summary


def icl_files(data_dir, tasks: Sequence[str], prompt_lang: str, test_langs: Sequence[str]) -> List[Path]:
    """The files ``evaluate_icl`` reads: each task's demonstrations and test sets in ``data_dir``."""
    data_dir = Path(data_dir)
    return [
        data_dir / pattern.format(lang=lang)
        for task in map(get_task, tasks)
        for pattern, langs in ((task.dev_file, [prompt_lang]), (task.test_file, test_langs))
        for lang in langs
    ]


def evaluate_icl(
    model,
    tokenizer,
    data_dir,
    tasks: Sequence[str],
    shots: Sequence[int],
    prompt_lang: str,
    test_langs: Sequence[str],
    seed: int = 0,
    batch_size: int = 8,
    progress: bool = True,
) -> dict:
    """Accuracy of every (task, test language, shot count); returns ``{"settings", "results", "averages"}``.

    Files are read from ``data_dir`` in each task's layout (see ``tasks.TASKS``); ``model`` must be in eval mode.
    """
    data_dir = Path(data_dir)
    results = []
    for task in map(get_task, tasks):
        dev = task.read(data_dir / task.dev_file.format(lang=prompt_lang)) if max(shots) > 0 else []
        connector = connector_text(task, tokenizer)
        for test_lang in test_langs:
            skips = SkipCounter()
            tests = task.read(data_dir / task.test_file.format(lang=test_lang), skips)
            counts = EvaluationCounts(scored=len(tests), skipped=dict(skips.counts)).as_json()
            for k in shots:
                items = build_items(task, demonstrations(dev, k, seed), tests, prompt_lang, connector)
                scores = score_items(model, tokenizer, items, batch_size, progress, f"{task.name} {test_lang} {k}-shot")
                results.append(
                    asdict(
                        ICLResult(
                            task.name,
                            prompt_lang,
                            test_lang,
                            k,
                            len(items),
                            _accuracy(items, predictions(items, scores)),
                            _accuracy(items, predictions(items, scores, length_normalize=True)),
                            counts,
                        )
                    )
                )
    settings = {
        "data_dir": str(data_dir),
        "tasks": list(tasks),
        "shots": list(shots),
        "prompt_lang": prompt_lang,
        "test_langs": list(test_langs),
        "seed": seed,
    }
    return {
        "settings": settings,
        "results": results,
        "averages": {"acc": averages(results, "acc"), "acc_norm": averages(results, "acc_norm")},
    }


def format_table(report: dict, metric: str = "acc") -> str:
    """A plain-text table: one row per task and test language, one column per shot count, then averages."""
    results, shots = report["results"], report["settings"]["shots"]
    rows = {}
    for r in results:
        rows.setdefault((r["task"], r["test_lang"], r["n"]), {})[r["shots"]] = r[metric]
    header = ["task", "prompt>test", "n"] + [f"{k}-shot" for k in shots]
    lines = [header]
    prompt_lang = report["settings"]["prompt_lang"]
    for (task, test_lang, n), by_shot in rows.items():
        lines.append([task, f"{prompt_lang}>{test_lang}", str(n)] + [f"{100 * by_shot[k]:.1f}" for k in shots])
    summary = report["averages"][metric]
    lines.append(["average", "", ""] + [f"{100 * summary[f'{k}-shot']:.1f}" for k in shots])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines]
    text.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(text) + f"\n{metric} (%), all settings: {100 * summary['all']:.1f}"
