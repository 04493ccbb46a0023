"""Results of the real-model transfer experiment over seeds: summary, markdown table, JSON and a PNG."""

import statistics
from pathlib import Path
from typing import Dict, List

from tools.experiments.real_transfer import VARIANTS, accuracy
from tools.experiments.transfer_report import _percent
from transformers_align.data.jsonl import write_atomic, write_json
from transformers_align.errors import UserError


def _spread(values: List[float]) -> dict:
    return {
        "mean": statistics.fmean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
        "values": values,
    }


def summarize(result: dict) -> dict:
    """Per variant and language: accuracy over seeds, the gain over the baseline of the same seed, retrieval at L.

    Accuracies are recomputed from the stored per-entity scores, so the summary cannot disagree with them.
    """
    labels = result["labels"]
    gold = [labels.index(entity["continent"]) for entity in result["test_entities"]]
    languages = ["en"] + list(result["config"]["languages"])
    layer = result["alignment_layer"]
    seeds = result["config"]["seeds"]
    pretrained = result["runs"]["pretrained"]
    summary = {
        "pretrained": {
            "accuracy": {language: accuracy(pretrained["scores"][language], gold) for language in languages},
            "retrieval_at_layer": {
                language: entry["en_to_x"][layer - 1] for language, entry in pretrained["retrieval"].items()
            },
        }
    }
    for variant in VARIANTS:  # an unfinished run lacks some variants or seeds: summarise what there is
        done = [
            seed
            for seed in seeds
            if f"{variant}/seed{seed}" in result["runs"] and f"baseline/seed{seed}" in result["runs"]
        ]
        if not done:
            continue
        runs = [result["runs"][f"{variant}/seed{seed}"] for seed in done]
        baselines = [result["runs"][f"baseline/seed{seed}"] for seed in done]
        entry = {"seeds": done, "accuracy": {}, "gain_over_baseline": {}, "retrieval_at_layer": {}}
        for language in languages:
            scores = [accuracy(run["scores"][language], gold) for run in runs]
            entry["accuracy"][language] = _spread(scores)
            entry["gain_over_baseline"][language] = _spread(
                [score - accuracy(base["scores"][language], gold) for score, base in zip(scores, baselines)]
            )
        others = [[accuracy(run["scores"][language], gold) for language in languages[1:]] for run in runs]
        entry["accuracy"]["mean_other"] = _spread([statistics.fmean(row) for row in others])
        entry["retrieval_at_layer"] = {
            language: _spread([run["retrieval"][language]["en_to_x"][layer - 1] for run in runs])
            for language in result["retrieval_pairs"]
        }
        entry["train_s"] = _spread([result["timings"][f"{variant}/seed{seed}"]["train_s"] for seed in done])
        summary[variant] = entry
    return summary


def _cell(spread: dict) -> str:
    if len(spread["values"]) == 1:
        return _percent(spread["mean"])
    return f"{_percent(spread['mean'])} ± {_percent(spread['sd'])}"


def markdown_table(result: dict) -> str:
    """Accuracy per language (mean ± sd over seeds), gain over the baseline, retrieval at L, training time."""
    summary = summarize(result)
    languages = ["en"] + list(result["config"]["languages"])
    retrieval_languages = list(result["retrieval_pairs"])
    layer = result["alignment_layer"]
    header = (
        ["model", "seeds"]
        + [f"acc {language}" for language in languages]
        + ["mean non-en", "gain non-en vs baseline"]
        + [f"R@1 en→{language} L{layer}" for language in retrieval_languages]
        + ["train s"]
    )
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    pretrained = summary["pretrained"]
    lines.append(
        "| "
        + " | ".join(
            ["pretrained", "–"]
            + [_percent(pretrained["accuracy"][language]) for language in languages]
            + [_percent(statistics.fmean(pretrained["accuracy"][x] for x in languages[1:])), "–"]
            + [_percent(pretrained["retrieval_at_layer"][x]) for x in retrieval_languages]
            + ["–"]
        )
        + " |"
    )
    for variant in (name for name in VARIANTS if name in summary):
        entry = summary[variant]
        gains = [
            statistics.fmean(values)
            for values in zip(*(entry["gain_over_baseline"][x]["values"] for x in languages[1:]))
        ]
        cells = (
            [variant, str(len(entry["seeds"]))]
            + [_cell(entry["accuracy"][language]) for language in languages]
            + [_cell(entry["accuracy"]["mean_other"]), "–" if variant == "baseline" else _cell(_spread(gains))]
            + [_cell(entry["retrieval_at_layer"][x]) for x in retrieval_languages]
            + [f"{entry['train_s']['mean']:.0f}"]
        )
        lines.append("| " + " | ".join(cells) + " |")
    config = result["config"]
    retrieval_pairs = result["retrieval_pairs"].values()
    notes = (
        f"\nAccuracy (%) on {len(result['test_entities'])} held-out entities per language "
        f"(chance {_percent(result['chance'])}, "
        f"most frequent training continent per kind {_percent(result['majority_by_kind'])}); non-English languages are "
        f"zero-shot. Mean ± sd over seeds {', '.join(map(str, config['seeds']))}; "
        f"gain = accuracy minus the baseline's of the same seed, averaged over the non-English languages. "
        f"R@1: top-1 EN→X retrieval among "
        f"{min(retrieval_pairs)}–{max(retrieval_pairs)} held-out gettext pairs, "
        f"{config['pooling']}-pooled output of block {layer} of {result['num_layers']} (the aligned one). "
        f"LoRA r {config['lora_rank']}, {config['steps']} task steps of {config['batch_size']}, "
        f"lr {config['learning_rate']}, temperature {config['temperature']}, "
        f"{result['training_pairs']} training pairs ({'+'.join(config.get('pair_languages') or config['languages'])}); "
        f"{result['torch_threads']} torch "
        f"thread(s), {result['timings'].get('total_s', '–')} s in all"
        f"{'' if result.get('finished', True) else ' (unfinished run: only the models listed)'}."
    )
    return "\n".join(lines) + "\n" + notes


def plot(result: dict, path) -> Path:
    """Left: accuracy per language and model (bars: seed mean, whiskers: min-max). Right: EN→X retrieval by layer."""
    from matplotlib.figure import Figure

    summary = summarize(result)
    languages = ["en"] + list(result["config"]["languages"])
    figure = Figure(figsize=(12, 4.5), layout="constrained")
    bars, lines = figure.subplots(1, 2, width_ratios=[1.4, 1])
    models = ["pretrained"] + [name for name in VARIANTS if name in summary]
    width = 0.8 / len(models)
    for index, model in enumerate(models):
        positions = [x + (index - (len(models) - 1) / 2) * width for x in range(len(languages))]
        if model == "pretrained":
            means, error_bars = [summary[model]["accuracy"][x] for x in languages], None
        else:
            spreads = [summary[model]["accuracy"][x] for x in languages]
            means = [s["mean"] for s in spreads]
            error_bars = [[s["mean"] - s["min"] for s in spreads], [s["max"] - s["mean"] for s in spreads]]
        bars.bar(positions, means, width, yerr=error_bars, capsize=3, color=f"C{index}", label=model)
    bars.axhline(result["chance"], color="grey", linestyle=":", linewidth=1, label="chance")
    bars.axhline(result["majority_by_kind"], color="black", linestyle="--", linewidth=0.8, label="majority per kind")
    bars.set_xticks(range(len(languages)), [x + (" (trained)" if x == "en" else " (zero-shot)") for x in languages])
    bars.set_ylabel("accuracy")
    bars.set_ylim(0, 1)
    bars.set_title("CLDR continent task, SmolLM2-135M-Instruct + LoRA")
    bars.legend(fontsize=8, ncol=2)
    for index, model in enumerate(models):
        runs = [run for name, run in result["runs"].items() if name == model or name.startswith(f"{model}/")]
        curves = [
            [statistics.fmean(values) for values in zip(*(entry["en_to_x"] for entry in run["retrieval"].values()))]
            for run in runs
        ]
        mean_curve = [statistics.fmean(values) for values in zip(*curves)]
        lines.plot(
            range(1, len(mean_curve) + 1),
            mean_curve,
            color=f"C{index}",
            label=model,
            linestyle="--" if model == "pretrained" else "-",
        )
    lines.axvline(result["alignment_layer"], color="grey", linewidth=0.8, linestyle=":", label="aligned layer")
    lines.set_xlabel("layer (output of decoder block)")
    lines.set_ylabel(f"top-1 EN→X retrieval (mean over {', '.join(result['retrieval_pairs'])})")
    lines.set_ylim(-0.02, 1.02)
    lines.legend(fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


def combine_runs(results: List[dict]) -> dict:
    """One result from runs of the same set-up with different seeds (e.g. run in parallel processes).

    The runs must agree on everything but their seeds, the pretrained model's scores included.
    """
    first = results[0]
    for other in results[1:]:
        differing = [
            name for name in first["config"] if name != "seeds" and first["config"][name] != other["config"].get(name)
        ]
        if differing or other["test_entities"] != first["test_entities"]:
            raise UserError(
                f"the runs differ in {', '.join(differing) or 'their test entities'}; only seeds may differ"
            )
        for language, rows in first["runs"]["pretrained"]["scores"].items():
            gap = max(
                abs(a - b)
                for row, other_row in zip(rows, other["runs"]["pretrained"]["scores"][language])
                for a, b in zip(row, other_row)
            )
            if gap > 1e-3:
                raise UserError(
                    f"the pretrained scores in {language} differ by {gap:.2g} between runs: not the same model"
                )
    seeds = [seed for result in results for seed in result["config"]["seeds"]]
    if len(set(seeds)) != len(seeds):
        raise UserError(f"a seed occurs in two runs: {seeds}")
    combined = {key: value for key, value in first.items() if key != "summary"}
    combined["config"] = {**first["config"], "seeds": seeds}
    combined["runs"] = {name: run for result in results for name, run in result["runs"].items()}
    combined["runs"]["pretrained"] = first["runs"]["pretrained"]
    combined["timings"] = {
        **{name: value for result in results for name, value in result["timings"].items()},
        "total_s": round(sum(result["timings"]["total_s"] for result in results), 1),
    }
    return combined


def save_results(result: dict, output_dir) -> Dict[str, Path]:
    """``results.json``, ``results.md`` and ``transfer.png`` under ``output_dir``."""
    output_dir = Path(output_dir)
    return {
        "json": write_json(output_dir / "results.json", {**result, "summary": summarize(result)}),
        "markdown": write_atomic(output_dir / "results.md", markdown_table(result) + "\n"),
        "plot": plot(result, output_dir / "transfer.png"),
    }
