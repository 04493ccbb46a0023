"""The transfer experiment's results as a markdown table, a JSON file and a PNG of layer-wise retrieval."""

from pathlib import Path

from transformers_align.data.jsonl import write_atomic, write_json


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def markdown_table(result: dict) -> str:
    """One row per model: accuracy in A and zero-shot in B (overall and per question), retrieval A->B per layer."""
    layer = result["alignment_layer"]
    layers = len(result["results"]["pretrained"]["retrieval"])
    questions = sorted(result["results"]["baseline"]["accuracy"]["B"])
    questions.remove("all")
    header = (
        ["model", "acc A", "acc B"]
        + [f"B {q[len('<ask_') : -1]}" for q in questions]
        + [f"R@1 L{index + 1}{'*' if index + 1 == layer else ''}" for index in range(layers)]
    )
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, entry in result["results"].items():
        accuracy = entry["accuracy"] or {"A": {}, "B": {}}
        cells = [name, _percent(accuracy["A"].get("all")), _percent(accuracy["B"].get("all"))]
        cells += [_percent(accuracy["B"].get(q)) for q in questions]
        cells += [_percent(value) for value in entry["retrieval"]]
        lines.append("| " + " | ".join(cells) + " |")
    config = result["config"]
    notes = (
        f"\nAccuracy (%) on {result['test_questions']} held-out questions per language (chance "
        f"{_percent(result['chance'])}, most frequent training answer {_percent(result['majority'])}); "
        f"B is zero-shot. R@1 Ln: top-1 A->B retrieval (%) among "
        f"{result['retrieval_pairs']} held-out pairs, mean-pooled output of block n; * = aligned layer "
        f"(temperature {config['temperature']}, {config['parallel_pairs']} pairs). Seed {config['seed']}, "
        f"{result['torch_threads']} torch thread(s), {result['timings']['total_s']} s."
    )
    return "\n".join(lines) + "\n" + notes


def plot_retrieval(result: dict, path) -> Path:
    """Top-1 A->B retrieval by layer, one line per model, the aligned layer marked (Agg renderer)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.5, 4.2), layout="constrained")
    axis = figure.subplots()
    for index, (name, entry) in enumerate(result["results"].items()):
        layers = range(1, len(entry["retrieval"]) + 1)
        axis.plot(
            layers,
            entry["retrieval"],
            marker="o",
            color=f"C{index}",
            label=name,
            linestyle="--" if name == "pretrained" else "-",
        )
        axis.set_xticks(list(layers))
    axis.axvline(result["alignment_layer"], color="grey", linewidth=0.8, linestyle=":", label="aligned layer")
    axis.set_ylim(-0.02, 1.02)
    axis.set_xlabel("layer (output of decoder block)")
    axis.set_ylabel("top-1 retrieval A -> B")
    axis.set_title(f"synthetic transfer, seed {result['config']['seed']}")
    axis.legend(fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


def save_results(result: dict, output_dir) -> dict:
    """Write ``results.json``, ``results.md`` and ``retrieval.png`` under ``output_dir``; returns their paths."""
    output_dir = Path(output_dir)
    return {
        "json": write_json(output_dir / "results.json", result),
        "markdown": write_atomic(output_dir / "results.md", markdown_table(result) + "\n"),
        "plot": plot_retrieval(result, output_dir / "retrieval.png"),
    }
