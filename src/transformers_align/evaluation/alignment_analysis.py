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
from tqdm.auto import tqdm

from transformers_align.data.jsonl import read_json
from transformers_align.data.records import SkipCounter, iter_json_records, load_pairs, load_records
from transformers_align.extras import require
from transformers_align.modeling import AlignmentSettings, aligned_representation, num_blocks, unwrap_causal_lm
from transformers_align.padding import pad_right_with_mask
from transformers_align.training.checkpoints import RUN_ARGS_FILE

logger = logging.getLogger(__name__)
METRICS = ("retrieval_0_to_1", "retrieval_1_to_0", "cosine_true", "cosine_random", "embedding_distance", "uniformity")


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


def saved_run_settings(folder) -> dict:
    """The alignment settings recorded by the training run that wrote ``folder`` (an adapter), or {}."""
    record = Path(folder) / RUN_ARGS_FILE if folder else None
    if record is None or not record.is_file():
        return {}
    saved = read_json(record).get("alignment", {})
    return {name: saved[name] for name in AlignmentSettings.names() if saved.get(name) is not None}


def analysis_settings(
    model,
    adapter_dir=None,
    pooling: Optional[str] = None,
    skip_first: Optional[int] = None,
    skip_bos: Optional[bool] = None,
    layer: Optional[int] = None,
) -> AlignmentSettings:
    """What the model was trained with, with the given values on top: the run record next to ``adapter_dir``,
    else the model config (a model saved by training carries its settings there), else the defaults."""
    causal_lm = unwrap_causal_lm(model)
    saved = {
        **saved_run_settings(adapter_dir),
        **{
            name: value
            for name, value in dict(
                contrastive_pooling_type=pooling,
                contrastive_pooling_skip_first=skip_first,
                contrastive_pooling_skip_special=skip_bos,
                additional_loss_layer=layer,
            ).items()
            if value is not None
        },
    }
    return AlignmentSettings.from_config(causal_lm.config, **saved).resolved(num_blocks(causal_lm))


@torch.no_grad()
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
    right-padded here (the tokenizer is not changed).
    """
    if every_layer:
        settings = AlignmentSettings(
            **{**asdict(settings), "additional_loss_layer": num_blocks(unwrap_causal_lm(model))}
        )
    device = next(model.parameters()).device
    encoded = tokenizer(list(texts))["input_ids"]
    vectors = []
    for start in tqdm(range(0, len(encoded), batch_size), desc=desc, disable=not progress):
        ids, mask = pad_right_with_mask(encoded[start : start + batch_size])
        vectors.append(
            aligned_representation(model, ids.to(device), mask.to(device), settings, all_layers=every_layer).cpu()
        )
    return torch.cat(vectors, dim=-2)


def metrics_at_layer(
    model, tokenizer, pairs: Sequence[Tuple[str, str]], settings: AlignmentSettings, batch_size: int = 16
) -> Dict[str, float]:
    """:func:`layer_metrics` of ``pairs`` at the aligned layer L only (blocks above L are not run)."""
    sides = [
        layer_embeddings(model, tokenizer, [p[i] for p in pairs], settings, batch_size, False, every_layer=False)
        for i in (0, 1)
    ]
    return layer_metrics(*sides)


def layer_metrics(side0: torch.Tensor, side1: torch.Tensor) -> Dict[str, float]:
    """The metrics of the module doc for pooled representations ``(n, dim)`` of the two sides, n >= 2."""
    n = side0.shape[0]
    if n < 2 or side1.shape != side0.shape:
        raise ValueError(
            f"need two equally shaped sides with at least 2 rows, got {tuple(side0.shape)} and {tuple(side1.shape)}"
        )
    x, y = F.normalize(side0.double(), dim=-1), F.normalize(side1.double(), dim=-1)
    similarity = x @ y.T
    truth = torch.arange(n)
    true_pairs = similarity.diagonal()
    squared_distances = torch.pdist(torch.cat([x, y]), p=2).pow(2)
    return {
        "retrieval_0_to_1": (similarity.argmax(dim=1) == truth).double().mean().item(),
        "retrieval_1_to_0": (similarity.argmax(dim=0) == truth).double().mean().item(),
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
    """``{"settings", "layers": [{"layer": l, **metrics}, ...], "warning"}`` for decoder blocks 1..N of
    ``model`` (eval mode).

    ``settings`` (default: the model's own, see :func:`analysis_settings`) give the pooling and the layer L
    reported as ``aligned_layer``; ``warning`` says when the vectors at L are degenerate (else None).
    """
    settings = settings or analysis_settings(model)
    side0 = layer_embeddings(model, tokenizer, [p[0] for p in pairs], settings, batch_size, progress, "side 0")
    side1 = layer_embeddings(model, tokenizer, [p[1] for p in pairs], settings, batch_size, progress, "side 1")
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
    return {"settings": report_settings, "layers": layers, "warning": warning}


def most_aligned_layer(report: dict) -> int:
    """The layer with the best mean of the two retrieval accuracies (the lowest such layer on ties)."""
    return max(report["layers"], key=lambda r: (r["retrieval_0_to_1"] + r["retrieval_1_to_0"], -r["layer"]))["layer"]


def format_table(report: dict) -> str:
    """One row per layer: retrieval both ways (%), true vs random cosine, distance and uniformity."""
    header = ["layer", "R@1 0>1", "R@1 1>0", "cos true", "cos rand", "distance", "uniform"]
    lines = [header] + [
        [
            str(r["layer"]),
            f"{100 * r['retrieval_0_to_1']:.1f}",
            f"{100 * r['retrieval_1_to_0']:.1f}",
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
    return "\n".join(text) + (
        f"\nbest mean retrieval at layer {most_aligned_layer(report)}, aligned layer "
        f"{report['settings']['aligned_layer']} ({report['settings']['pairs']} pairs)"
    )


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
