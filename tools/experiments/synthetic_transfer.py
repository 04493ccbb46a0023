"""The controlled transfer experiment: pretrain a tiny Llama on two artificial languages, fine-tune in A, test in B.

One run, deterministic for a seed: build the languages (``experiments.languages``), pretrain a small Llama
from scratch on monolingual text of both (causal LM, no parallel data), then fine-tune three variants
from that same checkpoint (the whole model, or LoRA with ``lora_rank``) on a slot question task in
language A only: ``baseline`` (task loss only), ``alternate`` (task and middle-layer InfoNCE on
parallel A-B pairs on alternate micro-steps, twice the steps so the task sees as many batches) and
``joint`` (both losses in every step). Each variant is scored on held-out meanings in A and,
zero-shot, in B, and layer-wise A->B retrieval is measured for the pretrained model and every variant.
"""

import copy
import random
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional

import torch
from transformers import AutoModelForCausalLM, PrinterCallback, set_seed

from tools.experiments import languages
from transformers_align.data.features import AlignmentCollator, FeatureOptions, tokenize_rows
from transformers_align.evaluation.alignment_analysis import analysis_settings, analyze_alignment
from transformers_align.modeling import patch_model
from transformers_align.padding import pad_right_with_mask
from transformers_align.tiny import tiny_config
from transformers_align.training.arguments import AlignmentTrainingArguments
from transformers_align.training.trainer import AlignmentTrainer

VARIANTS = {"baseline": "task", "alternate": "alternate", "joint": "joint"}  # variant -> AlignmentTrainer mode


@dataclass
class ExperimentConfig:
    """Sizes and hyper-parameters of one run; ``quick()`` gives the tiny version the tests use."""

    seed: int = 0
    pretrain_sentences: int = 12000  # monolingual sentences per language
    task_examples: int = 2000  # language-A (sentence, question) -> label examples
    parallel_pairs: int = 200  # A-B translation pairs for the alignment loss
    test_meanings: int = 300  # held-out meanings: every question on each, in A and in B; also the retrieval pairs
    hidden_size: int = 128
    intermediate_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    pretrain_epochs: float = 2.0
    pretrain_batch_size: int = 64
    pretrain_learning_rate: float = 3e-3
    finetune_steps: int = 600  # task batches each variant sees (alternate runs twice as many micro-steps)
    finetune_batch_size: int = 32
    finetune_learning_rate: float = 1e-3
    lora_rank: int = 0  # 0: full fine-tuning; > 0: LoRA of that rank on every linear layer of the blocks
    alignment_layer: Optional[int] = None  # default: the middle block, num_layers // 2
    temperature: float = 0.1
    threads: int = 1

    @classmethod
    def quick(cls, seed: int = 0) -> "ExperimentConfig":
        return cls(
            seed=seed,
            pretrain_sentences=1500,
            task_examples=600,
            parallel_pairs=64,
            test_meanings=60,
            hidden_size=64,
            intermediate_size=128,
            num_layers=2,
            num_heads=2,
            pretrain_epochs=2.0,
            finetune_steps=150,
            finetune_batch_size=16,
            finetune_learning_rate=3e-3,
        )

    @property
    def layer(self) -> int:
        return self.alignment_layer or max(1, self.num_layers // 2)


@dataclass
class ExperimentData:
    """Everything the run trains and tests on, as text rows."""

    lexicon: languages.Lexicon
    pretrain_texts: List[str]  # A and B sentences, shuffled together
    task_rows: List[Dict]  # {"prefix", "text", "text_parallel_0", "text_parallel_1"} (A task, A-B pair)
    test_rows: Dict[str, List[Dict]]  # language -> {"prompt", "answer", "question"}
    retrieval_pairs: List[tuple]  # (A sentence, B sentence) of the test meanings


def build_data(config: ExperimentConfig) -> ExperimentData:
    """The corpora of a run; test meanings are disjoint from the task and pair meanings."""
    lexicon, grammar = languages.Lexicon(config.seed), languages.Grammar(config.seed)
    rng = random.Random(f"data-{config.seed}")
    test_meanings = []
    while len(test_meanings) < config.test_meanings:
        meaning = grammar.sample(rng)
        if meaning not in test_meanings:
            test_meanings.append(meaning)
    held_out = frozenset(test_meanings)
    pretrain = [
        lexicon.render(m, language)
        for language in ("A", "B")
        for m in grammar.sample_many(rng, config.pretrain_sentences)
    ]
    rng.shuffle(pretrain)
    pairs = [
        (lexicon.render(m, "A"), lexicon.render(m, "B"))
        for m in grammar.sample_many(rng, config.parallel_pairs, held_out)
    ]
    task_rows = []
    for index, meaning in enumerate(grammar.sample_many(rng, config.task_examples, held_out)):
        question, answer = rng.choice(languages.questions_for(meaning))
        task_rows.append(
            {
                "prefix": f"{lexicon.render(meaning, 'A')} {question}",
                "text": f"{answer} {languages.EOS}",
                "text_parallel_0": pairs[index % len(pairs)][0],
                "text_parallel_1": pairs[index % len(pairs)][1],
            }
        )
    test_rows = {
        language: [
            {"prompt": f"{lexicon.render(m, language)} {q}", "answer": a, "question": q}
            for m in test_meanings
            for q, a in languages.questions_for(m)
        ]
        for language in ("A", "B")
    }
    retrieval_pairs = [(lexicon.render(m, "A"), lexicon.render(m, "B")) for m in test_meanings]
    return ExperimentData(lexicon, pretrain, task_rows, test_rows, retrieval_pairs)


def _training_arguments(
    output_dir: str, config: ExperimentConfig, progress: bool, **values
) -> AlignmentTrainingArguments:
    return AlignmentTrainingArguments(
        output_dir=output_dir,
        seed=config.seed,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        weight_decay=0.0,
        lr_scheduler_type="linear",
        warmup_ratio=0.05,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        disable_tqdm=not progress,
        **values,
    )


def _train(
    model, features, tokenizer, mode: str, config: ExperimentConfig, progress: bool, **values
) -> Dict[str, float]:
    """Train ``model`` in place with ``AlignmentTrainer``; returns the last logged per-objective losses."""
    with tempfile.TemporaryDirectory() as output_dir:
        trainer = AlignmentTrainer(
            model=model,
            args=_training_arguments(output_dir, config, progress, training_mode=mode, **values),
            train_dataset=features,
            data_collator=AlignmentCollator(tokenizer.pad_token_id),
        )
        if not progress:
            trainer.remove_callback(PrinterCallback)  # the logs would be printed instead of the progress bar
        trainer.train()
    losses = {}
    for entry in trainer.state.log_history:
        losses.update({name: entry[name] for name in ("task_loss", "alignment_loss") if name in entry})
    return losses


def pretrain(data: ExperimentData, tokenizer, config: ExperimentConfig, progress: bool = True):
    """A Llama trained from scratch as a causal LM on the mixed monolingual corpus (every token is a target)."""
    set_seed(config.seed)
    model_config = tiny_config(
        "llama",
        tokenizer,
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_heads,
        max_position_embeddings=64,
    )
    model = AutoModelForCausalLM.from_config(model_config)
    # The tiny random model has no first-token massive activation; mid-align's pooling (BOS included) as documented.
    patch_model(
        model,
        additional_loss_layer=config.layer,
        contrastive_loss_temperature=config.temperature,
        contrastive_pooling_skip_first=0,
    )
    features = [
        {"input_ids": ids, "labels": ids}
        for ids in tokenizer([f"{text} {languages.EOS}" for text in data.pretrain_texts]).input_ids
    ]
    losses = _train(
        model,
        features,
        tokenizer,
        "task",
        config,
        progress,
        num_train_epochs=config.pretrain_epochs,
        per_device_train_batch_size=config.pretrain_batch_size,
        learning_rate=config.pretrain_learning_rate,
        logging_steps=50,
    )
    return model.eval(), losses


def finetune(
    pretrained, data: ExperimentData, tokenizer, variant: str, config: ExperimentConfig, progress: bool = True
):
    """A copy of ``pretrained`` fine-tuned on the language-A task as ``variant`` does it (full, or LoRA
    if ``lora_rank``)."""
    set_seed(config.seed)
    model = copy.deepcopy(pretrained)
    if config.lora_rank:
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=config.lora_rank,
            lora_alpha=2 * config.lora_rank,
            lora_dropout=0.0,
            task_type="CAUSAL_LM",
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        )
        model = get_peft_model(model, lora)
    features = tokenize_rows(tokenizer, data.task_rows, FeatureOptions(block_size=64))
    mode = VARIANTS[variant]
    steps = config.finetune_steps * (2 if mode == "alternate" else 1)
    losses = _train(
        model,
        features,
        tokenizer,
        mode,
        config,
        progress,
        max_steps=steps,
        per_device_train_batch_size=config.finetune_batch_size,
        learning_rate=config.finetune_learning_rate,
        logging_steps=max(1, steps // 4),
    )
    return model.eval(), losses


@torch.no_grad()
def task_accuracy(model, tokenizer, rows: List[Dict], batch_size: int = 64) -> Dict[str, float]:
    """Share of rows whose answer scores highest among its question's candidate labels (one token each).

    Returns the overall accuracy under ``"all"`` and one per question token.
    """
    correct: Dict[str, List[bool]] = {}
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        encoded = tokenizer([row["prompt"] for row in batch]).input_ids
        ids, mask = pad_right_with_mask(encoded, tokenizer.pad_token_id)
        logits = model(input_ids=ids, attention_mask=mask).logits
        last = logits[torch.arange(len(batch)), mask.sum(dim=1) - 1]
        for row, scores in zip(batch, last):
            candidates = languages.candidate_labels(row["question"])
            candidate_ids = tokenizer.convert_tokens_to_ids(candidates)
            best = candidates[int(scores[candidate_ids].argmax())]
            correct.setdefault(row["question"], []).append(best == row["answer"])
    every = [hit for hits in correct.values() for hit in hits]
    return {"all": sum(every) / len(every), **{q: sum(hits) / len(hits) for q, hits in sorted(correct.items())}}


def retrieval_by_layer(model, tokenizer, pairs) -> List[float]:
    """Top-1 A->B retrieval accuracy (cosine of mean-pooled states) at the output of each decoder block."""
    settings = analysis_settings(model, pooling="mean", skip_first=0)
    report = analyze_alignment(model, tokenizer, pairs, settings, batch_size=64, progress=False)
    return [row["retrieval_0_to_1"] for row in report["layers"]]


def chance_accuracy(rows: List[Dict]) -> float:
    """Expected accuracy of a uniform guess among each row's candidates."""
    return sum(1 / len(languages.candidate_labels(row["question"])) for row in rows) / len(rows)


def majority_accuracy(task_rows: List[Dict], rows: List[Dict]) -> float:
    """Accuracy of always answering a question with its most frequent answer in the training rows."""
    counts = Counter((row["prefix"].rsplit(" ", 1)[1], row["text"].split()[0]) for row in task_rows)
    best = {}
    for (question, answer), count in sorted(counts.items()):
        if count > counts.get((question, best.get(question)), 0):
            best[question] = answer
    return sum(best.get(row["question"]) == row["answer"] for row in rows) / len(rows)


def run_experiment(config: ExperimentConfig, progress: bool = True) -> dict:
    """The whole experiment on ``config.threads`` torch threads, deterministic algorithms on (both restored after).

    Returns a JSON-ready dict of the config, timings, chance level, accuracies, losses and retrieval.
    """
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(config.threads)
    torch.use_deterministic_algorithms(True)
    try:
        return _run(config, progress)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def _run(config: ExperimentConfig, progress: bool) -> dict:
    started = time.perf_counter()
    data = build_data(config)
    tokenizer = languages.word_level_tokenizer(data.lexicon)
    pretrained, pretrain_losses = pretrain(data, tokenizer, config, progress)
    timings = {"pretrain_s": round(time.perf_counter() - started, 1)}
    results = {
        "pretrained": {
            "accuracy": None,
            "losses": pretrain_losses,
            "retrieval": retrieval_by_layer(pretrained, tokenizer, data.retrieval_pairs),
        }
    }
    for variant in VARIANTS:
        begin = time.perf_counter()
        model, losses = finetune(pretrained, data, tokenizer, variant, config, progress)
        results[variant] = {
            "accuracy": {language: task_accuracy(model, tokenizer, rows) for language, rows in data.test_rows.items()},
            "losses": losses,
            "retrieval": retrieval_by_layer(model, tokenizer, data.retrieval_pairs),
        }
        timings[f"{variant}_s"] = round(time.perf_counter() - begin, 1)
    timings["total_s"] = round(time.perf_counter() - started, 1)
    return {
        "config": asdict(config),
        "alignment_layer": config.layer,
        "timings": timings,
        "chance": chance_accuracy(data.test_rows["A"]),
        "majority": majority_accuracy(data.task_rows, data.test_rows["A"]),
        "test_questions": len(data.test_rows["A"]),
        "retrieval_pairs": len(data.retrieval_pairs),
        "torch_threads": config.threads,
        "results": results,
    }
