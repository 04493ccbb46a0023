"""WMT-style translation evaluation from local files: prompts, BLEU and chrF (sacrebleu), optional COMET."""

import importlib.util
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from transformers_align.data.chat import chat_prompt
from transformers_align.data.jsonl import DataFormatError, iter_jsonl, require_fields, string_field
from transformers_align.data.languages import language_name
from transformers_align.evaluation.counts import EvaluationCounts, check_missing, skipped_beyond_limit
from transformers_align.evaluation.generation import generate_greedy
from transformers_align.extras import require

# sacrebleu tokenizers for targets written without spaces between words; the rest use 13a.
# The MeCab ones need extra packages (sacrebleu[ja] / sacrebleu[ko]); without them "char" is used.
PREFERRED_BLEU_TOKENIZERS = {"zh": "zh", "ja": "ja-mecab", "ko": "ko-mecab"}
FALLBACK_BLEU_TOKENIZER = "char"


def translation_system_prompt(source_lang: str, target_lang: str) -> str:
    """``"Translate the following sentences from German to English."``"""
    return f"Translate the following sentences from {language_name(source_lang)} to {language_name(target_lang)}."


def wmt_files(data_dir, source_lang: str, target_lang: str) -> Tuple[Path, Path]:
    """``<data_dir>/<src>-<tgt>.<src>`` (sources) and ``<data_dir>/<src>-<tgt>.<tgt>`` (references)."""
    pair = Path(data_dir) / f"{source_lang}-{target_lang}"
    return pair.with_suffix(f".{source_lang}"), pair.with_suffix(f".{target_lang}")


def read_segments(path) -> List[str]:
    """One segment per line of a UTF-8 text file; a blank line is an error (it would misalign the files)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            raise DataFormatError(f"{path}:{line_number}: blank segment")
    if not lines:
        raise DataFormatError(f"{path}: no segments")
    return [line.strip() for line in lines]


def read_test_set(source_file, reference_file) -> Tuple[List[str], List[str]]:
    """Sources and references, line-aligned; their counts must match."""
    sources, references = read_segments(source_file), read_segments(reference_file)
    if len(sources) != len(references):
        raise DataFormatError(f"{source_file} has {len(sources)} segments but {reference_file} has {len(references)}")
    return sources, references


def read_translations(
    path, count: int, limit: Optional[int] = None, allow_missing: bool = False
) -> Tuple[List[str], EvaluationCounts]:
    """The first ``limit`` (default all ``count``) predictions of a translation JSONL file (``index`` and
    ``prediction`` fields, indices in ``[0, count)``), and their counts.

    A segment without a prediction raises :class:`MissingPredictionsError` unless ``allow_missing``: then
    its hypothesis is the empty string, scored like any wrong translation. Segments past ``limit`` are
    counted as skipped.
    """
    found = {}
    for line_number, raw in iter_jsonl(path):
        where = f"{path}:{line_number}"
        require_fields(raw, ("index", "prediction"), where)
        index = raw["index"]
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
            raise DataFormatError(f"{where}: field 'index' must be an integer in [0, {count}), got {index!r}")
        if index in found:
            raise DataFormatError(f"{where}: duplicate index {index}")
        found[index] = string_field(raw, "prediction", where, allow_empty=True)
    kept = range(min(count, limit) if limit is not None else count)
    missing = [index for index in kept if index not in found]
    check_missing(missing, len(kept), path, allow_missing)
    counts = EvaluationCounts(
        scored=len(kept) - len(missing), missing=len(missing), skipped=skipped_beyond_limit(count, limit)
    )
    return [found.get(index, "") for index in kept], counts


def bleu_tokenizer(target_lang: str) -> Tuple[str, Optional[str]]:
    """The sacrebleu tokenizer for a target language, and a message when the preferred one is unavailable."""
    preferred = PREFERRED_BLEU_TOKENIZERS.get(target_lang, "13a")
    try:
        _metrics().BLEU(tokenize=preferred)
    except (ImportError, RuntimeError, AssertionError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return FALLBACK_BLEU_TOKENIZER, (
            f"BLEU: tokenizer {preferred!r} for {target_lang} is unavailable ({reason}); "
            f"using {FALLBACK_BLEU_TOKENIZER!r}. Install sacrebleu[{target_lang}] for it."
        )
    return preferred, None


def score_translations(
    hypotheses: Sequence[str], references: Sequence[str], target_lang: str, counts: Optional[EvaluationCounts] = None
) -> dict:
    """Corpus BLEU and chrF with their sacrebleu signatures (BLEU uses :func:`bleu_tokenizer`), and ``counts``
    (default: every hypothesis scored)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    tokenizer, message = bleu_tokenizer(target_lang)
    bleu, chrf = _metrics().BLEU(tokenize=tokenizer), _metrics().CHRF()
    return {
        "bleu": bleu.corpus_score(list(hypotheses), [list(references)]).score,
        "chrf": chrf.corpus_score(list(hypotheses), [list(references)]).score,
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
        "bleu_tokenizer": tokenizer,
        "bleu_tokenizer_note": message,
        "counts": (counts or EvaluationCounts(scored=len(hypotheses))).as_json(),
    }


def comet_score(
    sources: Sequence[str],
    hypotheses: Sequence[str],
    references: Sequence[str],
    model_path: Optional[str],
    batch_size: int = 16,
) -> Tuple[Optional[float], Optional[str]]:
    """COMET system score with a local checkpoint, or ``(None, reason)`` when it cannot run offline.

    ``model_path`` is a ``.ckpt`` file or a downloaded COMET model folder (``checkpoints/model.ckpt``
    inside). Needs the ``comet`` package (unbabel-comet).
    """
    if importlib.util.find_spec("comet") is None:
        return None, "COMET skipped: the 'comet' package (pip install unbabel-comet) is not installed"
    if not model_path:
        return None, "COMET skipped: no local model given (--comet_model PATH to a COMET checkpoint)"
    path = Path(model_path)
    checkpoint = path / "checkpoints" / "model.ckpt" if path.is_dir() else path
    if not checkpoint.is_file():
        return None, f"COMET skipped: no checkpoint at {checkpoint}"
    import torch
    from comet import load_from_checkpoint

    model = load_from_checkpoint(str(checkpoint))
    data = [{"src": s, "mt": h, "ref": r} for s, h, r in zip(sources, hypotheses, references)]
    output = model.predict(data, batch_size=batch_size, gpus=1 if torch.cuda.is_available() else 0)
    return float(output.system_score), None


def translate(
    model,
    tokenizer,
    sources: Sequence[str],
    references: Sequence[str],
    source_lang: str,
    target_lang: str,
    batch_size: int,
    max_new_tokens: int,
    max_examples: Optional[int] = None,
) -> Tuple[List[dict], EvaluationCounts]:
    """Greedy translations of the first ``max_examples`` sources (all by default) as output records
    (index, source, reference, prompt, prediction), and the counts."""
    system = translation_system_prompt(source_lang, target_lang)
    prompts = [chat_prompt(tokenizer, system, source) for source in sources[:max_examples]]
    hypotheses = generate_greedy(
        model, tokenizer, prompts, batch_size, max_new_tokens, desc=f"WMT {source_lang}-{target_lang}"
    )
    records = [
        {"index": i, "source": s, "reference": r, "prompt": p, "prediction": h}
        for i, (s, r, p, h) in enumerate(zip(sources, references, prompts, hypotheses))
    ]
    return records, EvaluationCounts(scored=len(hypotheses), skipped=skipped_beyond_limit(len(sources), max_examples))


def evaluate_translations(
    sources: Sequence[str],
    hypotheses: Sequence[str],
    references: Sequence[str],
    target_lang: str,
    counts: EvaluationCounts,
    comet_model: Optional[str] = None,
    comet_batch_size: int = 16,
) -> dict:
    """:func:`score_translations` over the first ``counts.total`` segments, with ``comet`` and ``comet_note``."""
    sources, references = sources[: counts.total], references[: counts.total]
    metrics = score_translations(hypotheses, references, target_lang, counts)
    metrics["comet"], metrics["comet_note"] = comet_score(
        sources, hypotheses, references, comet_model, comet_batch_size
    )
    return metrics


def format_metrics(pair: str, metrics: dict) -> str:
    """The notes (if any) and one summary line, for the console."""
    counts = metrics["counts"]
    comet = "skipped" if metrics["comet"] is None else round(metrics["comet"], 4)
    summary = (
        f"{pair}: BLEU {metrics['bleu']:.2f} ({metrics['bleu_signature']}), chrF {metrics['chrf']:.2f}, "
        f"COMET {comet}; scored {counts['scored']} of {counts['total']} segment(s), "
        f"{counts['missing']} missing (scored as empty), {counts['skipped']} skipped"
    )
    return "\n".join([note for note in (metrics["bleu_tokenizer_note"], metrics["comet_note"]) if note] + [summary])


def _metrics():
    return require("sacrebleu.metrics", "BLEU and chrF")
