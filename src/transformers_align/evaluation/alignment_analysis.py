"""Layer-wise cross-lingual alignment of a model on parallel pairs: retrieval, cosine gap, distance, uniformity.

Layer l (1..N) is the output of decoder block l, from the same early-exit pass and pooling as the
alignment loss (``modeling.representation.aligned_representation``), so layer L shows exactly the
vectors that training compares (layer N is without the final norm, as ``additional_loss_layer = N``
trains). Per layer, with pooled representations x_i (side 0) and y_i (side 1) and hats for
L2-normalised vectors:

- ``retrieval_0_to_1``: share of i whose most cosine-similar y_j is y_i (ties go to the lower index);
  ``retrieval_1_to_0`` the same the other way.
- ``cosine_true`` = mean cos(x_i, y_i); ``cosine_random`` = mean cos(x_i, y_j) over all i != j.
- ``embedding_distance`` = mean ||x̂_i - ŷ_i||² (AFP's distance between languages; Wang & Isola's
  alignment, = 2 - 2 cosine_true).
- ``mining_f1_0_to_1``, ``mining_precision_0_to_1`` (and ``_1_to_0``): bitext mining as MTEB's BitextMining
  evaluator scores it (the nearest neighbour by cosine is the prediction, the pair index the label,
  scikit-learn's support-weighted precision and F1 over the labels); see :func:`mining_scores`. Its recall
  and accuracy are the top-1 retrieval above.
- ``uniformity`` = log mean over pairs of distinct vectors of exp(-2 ||ẑ_a - ẑ_b||²), over the 2n
  representations of both sides together (Wang & Isola; lower is more uniform).
"""

import logging
import math
from dataclasses import asdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from transformers_align.data.records import SkipCounter, iter_json_records, load_pairs, load_records
from transformers_align.errors import UserError
from transformers_align.evaluation.encoding import batched_by_length, token_ids, trained_settings
from transformers_align.evaluation.layer_choice import recommend, sweep_layers
from transformers_align.extras import require
from transformers_align.modeling import AlignmentSettings, aligned_representation, num_blocks, unwrap_causal_lm

logger = logging.getLogger(__name__)
METRICS = (
    "retrieval_0_to_1",
    "retrieval_1_to_0",
    "mining_f1_0_to_1",
    "mining_f1_1_to_0",
    "mining_precision_0_to_1",
    "mining_precision_1_to_0",
    "cosine_true",
    "cosine_random",
    "embedding_distance",
    "uniformity",
)


def read_pairs(path) -> List[Tuple[str, str]]:
    """Distinct pairs from a two-column TSV, or JSON/JSONL records with text_parallel_0/1 (or AFP's sent0/sent1)."""
    skips = SkipCounter()
    path = Path(path)
    if path.suffix != ".tsv" and "sent0" in next(iter_json_records(path), (0, {}))[1]:
        rows = [(r["sent0"], r["sent1"]) for r in load_records([path], ("sent0", "sent1"), skips)]
    else:
        rows = [(r["text_parallel_0"], r["text_parallel_1"]) for r in load_pairs([path], skips)]
    unique = list(dict.fromkeys(rows))
    for _ in range(len(rows) - len(unique)):
        skips.add("repeated pair (retrieval needs distinct pairs)")
    rows = unique
    skips.log(str(path))
    if len(rows) < 2:
        raise ValueError(f"{path}: {len(rows)} usable pair(s); retrieval and random pairs need at least 2")
    return rows


# The name the report and the scripts use for the settings a model was trained with.
analysis_settings = trained_settings


def layer_embeddings(
    model,
    tokenizer,
    texts: Sequence[str],
    settings: AlignmentSettings,
    batch_size: int = 16,
    progress: bool = True,
    desc: str = "encoding",
    every_layer: bool = True,
) -> torch.Tensor:
    """``(num_layers, len(texts), dim)`` float32 vectors of decoder blocks 1..N, pooled as ``settings`` say.

    The same early-exit pass and pooling as the alignment loss (``aligned_representation``): at layer L
    these are the vectors that training compares. Without ``every_layer``, ``(len(texts), dim)`` at layer
    L only (blocks above L are not run). Texts are encoded with the tokenizer's special tokens and
    right-padded here (the tokenizer is not changed), longest first, returned in input order.
    """
    if every_layer:
        settings = AlignmentSettings(
            **{**asdict(settings), "additional_loss_layer": num_blocks(unwrap_causal_lm(model))}
        )
    device = next(model.parameters()).device
    return batched_by_length(
        token_ids(tokenizer, texts),
        lambda ids, mask: aligned_representation(
            model, ids.to(device), mask.to(device), settings, all_layers=every_layer
        ).cpu(),
        batch_size,
        progress,
        desc,
    )


def metrics_at_layer(
    model, tokenizer, pairs: Sequence[Tuple[str, str]], settings: AlignmentSettings, batch_size: int = 16
) -> Dict[str, float]:
    """:func:`layer_metrics` of ``pairs`` at the aligned layer L only (blocks above L are not run)."""
    sides = [
        layer_embeddings(model, tokenizer, [p[i] for p in pairs], settings, batch_size, False, every_layer=False)
        for i in (0, 1)
    ]
    return layer_metrics(*sides)


def mining_scores(predictions: torch.Tensor) -> Dict[str, float]:
    """Precision, recall and F1 of bitext mining from each query's predicted index (query i's gold is i).

    MTEB's evaluator passes labels ``range(n)`` and these predictions to scikit-learn with
    ``average="weighted"``: each gold index has support 1, so the scores are means over the n golds. For
    gold i, with c_i the number of queries that predict i: precision 1/c_i and F1 2/(1 + c_i) when query i
    predicts i, else 0; recall is then the share of right predictions (= top-1 retrieval).
    """
    n = predictions.numel()
    right = (predictions == torch.arange(n)).double()
    predicted_count = torch.bincount(predictions, minlength=n)[:n].double()
    return {
        "precision": (right / predicted_count.clamp_min(1)).mean().item(),
        "recall": right.mean().item(),
        "f1": (2 * right / (1 + predicted_count)).mean().item(),
    }


def layer_metrics(side0: torch.Tensor, side1: torch.Tensor) -> Dict[str, float]:
    """The metrics of the module doc for pooled representations ``(n, dim)`` of the two sides, n >= 2."""
    n = side0.shape[0]
    if n < 2 or side1.shape != side0.shape:
        raise ValueError(
            f"need two equally shaped sides with at least 2 rows, got {tuple(side0.shape)} and {tuple(side1.shape)}"
        )
    x, y = F.normalize(side0.double(), dim=-1), F.normalize(side1.double(), dim=-1)
    similarity = x @ y.T
    true_pairs = similarity.diagonal()
    squared_distances = torch.pdist(torch.cat([x, y]), p=2).pow(2)
    nearest = {"0_to_1": similarity.argmax(dim=1), "1_to_0": similarity.argmax(dim=0)}
    mining = {direction: mining_scores(predicted) for direction, predicted in nearest.items()}
    return {
        **{f"retrieval_{direction}": scores["recall"] for direction, scores in mining.items()},
        **{
            f"mining_{score}_{direction}": mining[direction][score]
            for direction in nearest
            for score in ("f1", "precision")
        },
        "cosine_true": true_pairs.mean().item(),
        "cosine_random": ((similarity.sum() - true_pairs.sum()) / (n * (n - 1))).item(),
        "embedding_distance": (x - y).pow(2).sum(dim=-1).mean().item(),
        "uniformity": (torch.logsumexp(-2.0 * squared_distances, dim=0) - math.log(squared_distances.numel())).item(),
    }


def analyze_alignment(
    model,
    tokenizer,
    pairs: Sequence[Tuple[str, str]],
    settings: Optional[AlignmentSettings] = None,
    batch_size: int = 16,
    progress: bool = True,
) -> dict:
    """``{"settings", "layers": [{"layer": l, **metrics}, ...], "warning", "recommendation"}`` for decoder
    blocks 1..N of ``model`` (eval mode), from one pass of each side through all blocks.

    ``settings`` (default: the model's own, see :func:`analysis_settings`) give the pooling and the layer L
    reported as ``aligned_layer``; ``warning`` says when the vectors at L are degenerate (else None);
    ``recommendation`` is the layer and skip-first that ``layer_choice.recommend`` picks from these pairs.
    """
    settings = settings or analysis_settings(model)
    sweep = sweep_layers(
        model, tokenizer, pairs, settings, [settings.contrastive_pooling_skip_first], batch_size, progress
    )
    side0, side1 = sweep.vectors[settings.contrastive_pooling_skip_first]
    layers = [{"layer": index + 1, **layer_metrics(a, b)} for index, (a, b) in enumerate(zip(side0, side1))]
    at_layer = layers[settings.additional_loss_layer - 1]
    warning = settings.degeneracy_warning(at_layer["cosine_true"], at_layer["cosine_random"])
    if warning:
        logger.warning(warning)
    report_settings = {
        "pairs": len(pairs),
        "aligned_layer": settings.additional_loss_layer,
        "pooling": settings.contrastive_pooling_type,
        "skip_first": settings.contrastive_pooling_skip_first,
        "skip_bos": settings.contrastive_pooling_skip_special,
        "note": "layer l is the output of decoder block l by early exit (layer N without the final norm), "
        "pooled as the alignment loss pools",
    }
    return {
        "settings": report_settings,
        "layers": layers,
        "warning": warning,
        "recommendation": recommend(sweep, settings),
    }


def pairs_name(path) -> str:
    """A pairs file's name up to its first dot (``en-fr.test.tsv`` -> ``en-fr``), to label its language."""
    return Path(path).name.split(".", 1)[0]


class PairsFilesError(UserError):
    """Pairs files that the report could not tell apart."""


def read_pairs_files(files: Sequence, max_pairs: Optional[int] = None) -> Dict[str, List[Tuple[str, str]]]:
    """``{name: the first max_pairs pairs}`` of each file (see :func:`pairs_name`), names distinct."""
    names = [pairs_name(path) for path in files]
    if len(set(names)) != len(names):
        raise PairsFilesError(f"--pairs {','.join(map(str, files))}: two files share a name before the first dot")
    return {name: read_pairs(path)[:max_pairs] for name, path in zip(names, files)}


def analyze_languages(
    model,
    tokenizer,
    pairs_by_language: Dict[str, Sequence[Tuple[str, str]]],
    settings: Optional[AlignmentSettings] = None,
    batch_size: int = 16,
    progress: bool = True,
) -> dict:
    """``{"languages": {name: analyze_alignment report}, "mean": {"settings", "layers"}}``: one report per pairs
    set (e.g. one language pair each) and, per layer, the unweighted mean of each metric over the sets."""
    settings = settings or analysis_settings(model)
    reports = {
        name: analyze_alignment(model, tokenizer, pairs, settings, batch_size, progress)
        for name, pairs in pairs_by_language.items()
    }
    first = next(iter(reports.values()))
    mean_layers = [
        {
            "layer": row["layer"],
            **{metric: sum(r["layers"][index][metric] for r in reports.values()) / len(reports) for metric in METRICS},
        }
        for index, row in enumerate(first["layers"])
    ]
    mean_settings = {**first["settings"], "pairs": sum(r["settings"]["pairs"] for r in reports.values())}
    mean_settings["languages"] = list(reports)
    return {"languages": reports, "mean": {"settings": mean_settings, "layers": mean_layers}}


def format_languages(multi: dict) -> str:
    """Each language's table, the table of the means, and one line per language at the aligned layer."""
    layer = multi["mean"]["settings"]["aligned_layer"]
    parts = [f"== {name} ==\n{format_table(report)}" for name, report in multi["languages"].items()]
    parts.append(f"== mean over {len(multi['languages'])} pairs files ==\n{format_table(multi['mean'])}")
    summary = [f"at layer {layer}: language, R@1 0>1, F1 0>1, R@1 1>0, F1 1>0 (%), best layer"]
    for name, report in [*multi["languages"].items(), ("mean", multi["mean"])]:
        row = report["layers"][layer - 1]
        summary.append(
            f"  {name}: {100 * row['retrieval_0_to_1']:.1f} {100 * row['mining_f1_0_to_1']:.1f} "
            f"{100 * row['retrieval_1_to_0']:.1f} {100 * row['mining_f1_1_to_0']:.1f}, {most_aligned_layer(report)}"
        )
    return "\n\n".join(parts) + "\n\n" + "\n".join(summary)


def most_aligned_layer(report: dict) -> int:
    """The layer with the best mean of the two retrieval accuracies (the lowest such layer on ties)."""
    return max(report["layers"], key=lambda r: (r["retrieval_0_to_1"] + r["retrieval_1_to_0"], -r["layer"]))["layer"]


def format_table(report: dict) -> str:
    """One row per layer: retrieval and MTEB's bitext-mining F1 both ways (%), true vs random cosine, distance,
    uniformity."""
    header = ["layer", "R@1 0>1", "R@1 1>0", "F1 0>1", "F1 1>0", "cos true", "cos rand", "distance", "uniform"]
    lines = [header] + [
        [
            str(r["layer"]),
            f"{100 * r['retrieval_0_to_1']:.1f}",
            f"{100 * r['retrieval_1_to_0']:.1f}",
            f"{100 * r['mining_f1_0_to_1']:.1f}",
            f"{100 * r['mining_f1_1_to_0']:.1f}",
            f"{r['cosine_true']:.3f}",
            f"{r['cosine_random']:.3f}",
            f"{r['embedding_distance']:.3f}",
            f"{r['uniformity']:.3f}",
        ]
        for r in report["layers"]
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.rjust(width) for cell, width in zip(line, widths)) for line in lines]
    text.insert(1, "  ".join("-" * width for width in widths))
    text = "\n".join(text) + (
        f"\nbest mean retrieval at layer {most_aligned_layer(report)}, aligned layer "
        f"{report['settings']['aligned_layer']} ({report['settings']['pairs']} pairs)"
    )
    if report.get("recommendation"):
        text += f"\nrecommended: {report['recommendation']['reason']}"
    return text


def plot(report: dict, path, baseline: Optional[dict] = None) -> Path:
    """A PNG of the metrics by layer (Agg renderer); a ``baseline`` report, e.g. before training, is drawn dashed."""
    Figure = require("matplotlib.figure", "the layer plot").Figure

    figure = Figure(figsize=(11, 7.5), layout="constrained")
    axes = figure.subplots(2, 2)
    panels = [
        ("top-1 retrieval", ("retrieval_0_to_1", "retrieval_1_to_0")),
        ("cosine", ("cosine_true", "cosine_random")),
        ("embedding distance (lower = closer)", ("embedding_distance",)),
        ("uniformity (lower = more uniform)", ("uniformity",)),
    ]
    for axis, (title, metrics) in zip(axes.flat, panels):
        for source, style, label in ((report, "-", ""), (baseline, "--", " (baseline)")):
            if source is None:
                continue
            layers = [r["layer"] for r in source["layers"]]
            for color, metric in enumerate(metrics):
                axis.plot(
                    layers,
                    [r[metric] for r in source["layers"]],
                    style,
                    color=f"C{color}",
                    marker="o",
                    label=metric + label,
                )
        axis.set_title(title)
        axis.set_xlabel("layer (output of decoder block)")
        axis.set_xticks([r["layer"] for r in report["layers"]])
        axis.legend(fontsize=8)
    axes[0, 0].set_ylim(-0.02, 1.02)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path
