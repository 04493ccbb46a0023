"""Layer-wise cross-lingual alignment of a model on parallel pairs: retrieval, cosine gap, distance, uniformity.

Layer l (1..N) is ``hidden_states[l]`` of one forward with ``output_hidden_states``: the output of
decoder block l. In Hugging Face's Llama, Qwen2, XGLM and BLOOM, ``hidden_states[N]`` has the final
norm applied, unlike the early-exit representation that ``additional_loss_layer = N`` trains. Per
layer, with pooled representations x_i (side 0) and y_i (side 1) and hats for L2-normalised vectors:

- ``retrieval_0_to_1``: share of i whose most cosine-similar y_j is y_i (ties go to the lower index);
  ``retrieval_1_to_0`` the same the other way.
- ``cosine_true`` = mean cos(x_i, y_i); ``cosine_random`` = mean cos(x_i, y_j) over all i != j.
- ``embedding_distance`` = mean ||x̂_i - ŷ_i||² (AFP's distance between languages; Wang & Isola's
  alignment, = 2 - 2 cosine_true).
- ``uniformity`` = log mean over pairs of distinct vectors of exp(-2 ||ẑ_a - ẑ_b||²), over the 2n
  representations of both sides together (Wang & Isola; lower is more uniform).
"""
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from transformers_align.data.records import SkipCounter, iter_json_records, load_pairs, load_records
from transformers_align.evaluation.loglikelihood import backbone_and_head, pad_right
from transformers_align.losses import drop_leading_special_tokens, pool

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


@torch.no_grad()
def layer_embeddings(model, tokenizer, texts: Sequence[str], pooling: str = "mean", batch_size: int = 16,
                     skip_bos: bool = False, progress: bool = True, desc: str = "encoding") -> torch.Tensor:
    """``(num_layers, len(texts), dim)`` float32 pooled outputs of decoder blocks 1..N (no LM head is run).

    Texts are encoded with the tokenizer's special tokens and right-padded here (the tokenizer is not
    changed); ``skip_bos`` leaves the special tokens that open each text out of the pooling.
    """
    backbone, _ = backbone_and_head(model)
    device = next(model.parameters()).device
    encoded = tokenizer(list(texts))["input_ids"]
    special = [tokenizer.bos_token_id] if skip_bos and tokenizer.bos_token_id is not None else []
    layers = []
    for start in tqdm(range(0, len(encoded), batch_size), desc=desc, disable=not progress):
        ids, mask = pad_right(encoded[start:start + batch_size])
        ids, mask = ids.to(device), mask.to(device)
        hidden_states = backbone(input_ids=ids, attention_mask=mask, output_hidden_states=True, use_cache=False,
                                 return_dict=True).hidden_states
        pooling_mask = drop_leading_special_tokens(ids, mask, special) if special else mask
        layers.append(torch.stack([pool(h, pooling_mask, pooling) for h in hidden_states[1:]]).cpu())
    return torch.cat(layers, dim=1)


def layer_metrics(side0: torch.Tensor, side1: torch.Tensor) -> Dict[str, float]:
    """The metrics of the module doc for pooled representations ``(n, dim)`` of the two sides, n >= 2."""
    n = side0.shape[0]
    if n < 2 or side1.shape != side0.shape:
        raise ValueError(f"need two equally shaped sides with at least 2 rows, got {tuple(side0.shape)} and {tuple(side1.shape)}")
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


def analyze_alignment(model, tokenizer, pairs: Sequence[Tuple[str, str]], pooling: str = "mean", batch_size: int = 16,
                      skip_bos: bool = False, progress: bool = True) -> dict:
    """``{"settings", "layers": [{"layer": l, **metrics}, ...]}`` for decoder blocks 1..N of ``model`` (in eval mode)."""
    side0 = layer_embeddings(model, tokenizer, [p[0] for p in pairs], pooling, batch_size, skip_bos, progress, "side 0")
    side1 = layer_embeddings(model, tokenizer, [p[1] for p in pairs], pooling, batch_size, skip_bos, progress, "side 1")
    layers = [{"layer": index + 1, **layer_metrics(a, b)} for index, (a, b) in enumerate(zip(side0, side1))]
    settings = {"pairs": len(pairs), "pooling": pooling, "skip_bos": skip_bos,
                "note": "layer N is hidden_states[N], after the model's final norm"}
    return {"settings": settings, "layers": layers}


def most_aligned_layer(report: dict) -> int:
    """The layer with the best mean of the two retrieval accuracies (the lowest such layer on ties)."""
    return max(report["layers"], key=lambda r: (r["retrieval_0_to_1"] + r["retrieval_1_to_0"], -r["layer"]))["layer"]


def format_table(report: dict) -> str:
    """One row per layer: retrieval both ways (%), true vs random cosine, distance and uniformity."""
    header = ["layer", "R@1 0>1", "R@1 1>0", "cos true", "cos rand", "distance", "uniform"]
    lines = [header] + [[str(r["layer"]), f"{100 * r['retrieval_0_to_1']:.1f}", f"{100 * r['retrieval_1_to_0']:.1f}",
                         f"{r['cosine_true']:.3f}", f"{r['cosine_random']:.3f}", f"{r['embedding_distance']:.3f}",
                         f"{r['uniformity']:.3f}"] for r in report["layers"]]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.rjust(width) for cell, width in zip(line, widths)) for line in lines]
    text.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(text) + f"\nbest mean retrieval at layer {most_aligned_layer(report)} ({report['settings']['pairs']} pairs)"


def plot(report: dict, path, baseline: Optional[dict] = None) -> Path:
    """A PNG of the metrics by layer (Agg renderer); a ``baseline`` report, e.g. before training, is drawn dashed."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 7.5), layout="constrained")
    axes = figure.subplots(2, 2)
    panels = [("top-1 retrieval", ("retrieval_0_to_1", "retrieval_1_to_0")), ("cosine", ("cosine_true", "cosine_random")),
              ("embedding distance (lower = closer)", ("embedding_distance",)), ("uniformity (lower = more uniform)", ("uniformity",))]
    for axis, (title, metrics) in zip(axes.flat, panels):
        for source, style, label in ((report, "-", ""), (baseline, "--", " (baseline)")):
            if source is None:
                continue
            layers = [r["layer"] for r in source["layers"]]
            for color, metric in enumerate(metrics):
                axis.plot(layers, [r[metric] for r in source["layers"]], style, color=f"C{color}", marker="o", label=metric + label)
        axis.set_title(title)
        axis.set_xlabel("layer (output of decoder block)")
        axis.set_xticks([r["layer"] for r in report["layers"]])
        axis.legend(fontsize=8)
    axes[0, 0].set_ylim(-0.02, 1.02)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path
