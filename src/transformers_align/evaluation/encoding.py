"""Sentence vectors: the pooled layer-L states that the alignment loss compares, for any list of texts.

Two doors. :func:`encode` takes a loaded model (stock, aligned or with a PEFT adapter) and its tokenizer.
:class:`SentenceEncoder` is built from a model or adapter folder, and its ``encode(sentences, batch_size=...)``
takes the arguments ``sentence_transformers.SentenceTransformer.encode`` takes and returns what it returns
(a NumPy array by default), so it can be handed to evaluators written for sentence-transformers or MTEB
(MTEB 2 hands ``encode`` a DataLoader of ``{"text": [...]}`` batches and calls ``similarity``: both work).

The settings (layer, pooling, skip-first, skip-BOS) are those the model was trained with: the run record
next to the adapter (``alignment_run_args.json``), else the model config, else the defaults; each can be
overridden. Texts are tokenized as training tokenizes pairs (with the tokenizer's special tokens), batched
by length (longest first, as sentence-transformers does) and returned in input order, in float32.
"""

from pathlib import Path
from typing import Callable, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from transformers_align.data.jsonl import read_json
from transformers_align.errors import UserError
from transformers_align.losses import similarity_matrix
from transformers_align.modeling import AlignmentSettings, aligned_representation, num_blocks, unwrap_causal_lm
from transformers_align.padding import pad_right_with_mask


class EncodingError(UserError):
    """What was given to encode cannot be encoded (an empty text, a prompt, a folder without a model)."""


def saved_run_settings(folder) -> dict:
    """The alignment settings recorded by the training run that wrote ``folder`` (an adapter), or {}."""
    from transformers_align.training.checkpoints import RUN_ARGS_FILE

    record = Path(folder) / RUN_ARGS_FILE if folder else None
    if record is None or not record.is_file():
        return {}
    saved = read_json(record).get("alignment", {})
    return {name: saved[name] for name in AlignmentSettings.names() if saved.get(name) is not None}


def trained_settings(
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


def token_ids(tokenizer, texts: Sequence[str], max_length: Optional[int] = None) -> List[List[int]]:
    """Ids as training tokenizes a pair side (special tokens included), cut at ``max_length``; no empty text."""
    empty = [index for index, text in enumerate(texts) if not text.strip()]
    if empty:
        raise EncodingError(f"text {empty[0]} is empty ({len(empty)} empty in all): a sentence vector needs tokens")
    return [ids[:max_length] for ids in tokenizer(list(texts))["input_ids"]]


@torch.no_grad()
def batched_by_length(
    encoded: Sequence[Sequence[int]],
    vectors_of_batch: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    batch_size: int,
    progress: bool = True,
    desc: str = "encoding",
) -> torch.Tensor:
    """``vectors_of_batch(ids, mask)`` over right-padded batches of the longest sequences first, concatenated
    on dimension -2 and put back in the order of ``encoded`` (sorting by length keeps padding small)."""
    if batch_size < 1:
        raise EncodingError(f"batch_size {batch_size}: expected an integer >= 1")
    order = sorted(range(len(encoded)), key=lambda index: -len(encoded[index]))
    chunks = []
    for start in tqdm(range(0, len(order), batch_size), desc=desc, disable=not progress):
        ids, mask = pad_right_with_mask([encoded[index] for index in order[start : start + batch_size]])
        chunks.append(vectors_of_batch(ids, mask))
    vectors = torch.cat(chunks, dim=-2)
    inverse = torch.empty(len(order), dtype=torch.long)
    inverse[torch.tensor(order)] = torch.arange(len(order))
    return vectors.index_select(-2, inverse.to(vectors.device))


def encode(
    model,
    tokenizer,
    texts: Union[str, Sequence[str]],
    batch_size: int = 32,
    *,
    adapter_dir=None,
    layer: Optional[int] = None,
    pooling: Optional[str] = None,
    skip_first: Optional[int] = None,
    skip_bos: Optional[bool] = None,
    settings: Optional[AlignmentSettings] = None,
    normalize: bool = False,
    max_length: Optional[int] = None,
    progress: bool = True,
) -> torch.Tensor:
    """``(len(texts), hidden_size)`` float32 sentence vectors on the model's device (``(hidden_size,)`` for one str).

    The vectors the alignment loss compares: the output of decoder block L by early exit, pooled over the real
    tokens less the skipped leading ones. ``settings`` (resolved) replace the lookup; otherwise ``layer``,
    ``pooling``, ``skip_first`` and ``skip_bos`` override what the run record next to ``adapter_dir`` or the
    model config says. ``normalize``: unit L2 norm (cosine = dot product). The model is used as it is (call
    ``model.eval()`` for dropout-free vectors).
    """
    single = isinstance(texts, str)
    texts = [texts] if single else list(texts)
    settings = settings or trained_settings(model, adapter_dir, pooling, skip_first, skip_bos, layer)
    device = next(model.parameters()).device
    if not texts:
        return torch.empty(0, unwrap_causal_lm(model).config.hidden_size, device=device)
    vectors = batched_by_length(
        token_ids(tokenizer, texts, max_length),
        lambda ids, mask: aligned_representation(model, ids.to(device), mask.to(device), settings),
        batch_size,
        progress,
    )
    if normalize:
        vectors = F.normalize(vectors, dim=-1)
    return vectors[0] if single else vectors


class SentenceEncoder:
    """A model as a sentence encoder with sentence-transformers' ``encode`` signature.

    ``SentenceEncoder(model, tokenizer, layer=..., ...)`` wraps a loaded model; ``SentenceEncoder.from_pretrained
    (folder)`` loads a model folder, or an adapter folder (its ``adapter_config.json`` names the base model),
    with the settings its run recorded. ``settings`` holds what the vectors are made with.
    """

    def __init__(self, model, tokenizer, adapter_dir=None, max_length: Optional[int] = None, **overrides):
        self.model, self.tokenizer, self.max_length = model, tokenizer, max_length
        self.settings = trained_settings(model, adapter_dir, **overrides)

    @classmethod
    def from_pretrained(
        cls, model_name_or_path, adapter=None, device: Optional[str] = None, dtype=None, **overrides
    ) -> "SentenceEncoder":
        """``model_name_or_path`` a local model folder (with ``adapter`` an adapter folder on it), or an adapter
        folder alone; loaded in eval mode as the evaluation scripts load models (local files only)."""
        from transformers_align.evaluation.generation import load_model_and_tokenizer

        folder = Path(model_name_or_path)
        if adapter is None and (folder / "adapter_config.json").is_file():
            adapter = folder
            model_name_or_path = read_json(folder / "adapter_config.json").get("base_model_name_or_path")
            if not model_name_or_path:
                raise EncodingError(f"{folder}/adapter_config.json names no base_model_name_or_path: pass the model")
        model, tokenizer = load_model_and_tokenizer(str(model_name_or_path), adapter and str(adapter), device, dtype)
        return cls(model, tokenizer, adapter_dir=adapter, **overrides)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def encode(
        self,
        sentences: Union[str, Sequence[str]],
        batch_size: int = 32,
        show_progress_bar: Optional[bool] = None,
        convert_to_numpy: bool = True,
        convert_to_tensor: bool = False,
        normalize_embeddings: bool = False,
        prompt: Optional[str] = None,
        prompt_name: Optional[str] = None,
        **kwargs,
    ):
        """As ``SentenceTransformer.encode``: a NumPy array (rows in input order), a tensor on the model's device
        with ``convert_to_tensor``, or a list of tensors with ``convert_to_numpy=False``; one vector for one str.

        Other keywords that evaluators pass (MTEB's ``task_name``, ``prompt_type``) are accepted and change
        nothing; a prompt is refused, since the alignment loss compares sentences without one.
        """
        if isinstance(sentences, DataLoader):  # MTEB 2's way of passing the texts
            sentences = [text for batch in sentences for text in batch["text"]]
        if prompt is not None or prompt_name is not None:
            raise EncodingError(
                "prompt / prompt_name: these vectors are the ones the alignment loss compares, which have no prompt"
            )
        vectors = encode(
            self.model,
            self.tokenizer,
            sentences,
            batch_size,
            settings=self.settings,
            normalize=normalize_embeddings,
            max_length=self.max_length,
            progress=bool(show_progress_bar),
        )
        if convert_to_tensor:
            return vectors
        if convert_to_numpy:
            return vectors.cpu().numpy()
        return list(vectors) if vectors.dim() == 2 else vectors

    def similarity(self, embeddings0, embeddings1) -> torch.Tensor:
        """Cosine similarities, ``(len(embeddings0), len(embeddings1))``: sentence-transformers' default."""
        return similarity_matrix(torch.as_tensor(embeddings0), torch.as_tensor(embeddings1), "cosine")
