"""Transfer on a real checkpoint: train the CLDR continent task in English with LoRA, test it zero-shot
in other languages.

SmolLM2-135M-Instruct (English-centric) gets LoRA adapters and is fine-tuned on English prompts of
``experiments.cldr_task`` only, several ways from the same weights, seed and data order: ``baseline``
(task loss only), ``alternate`` (task and middle-layer InfoNCE on real EN-X gettext pairs on alternate
micro-steps, twice the micro-steps so the task sees as many batches) and ``joint`` (both losses in each
step); and with the output-consistency objective on the same entities' prompts translated (the English
answer on both sides): ``consistency`` (task and consistency in each step) and ``alternate+consistency``
(task, InfoNCE and consistency micro-steps in turn, three times the micro-steps). Each model answers the
held-out entities' prompts in English and, zero-shot, in every other language, by log-likelihood of the five
continent names; retrieval of held-out EN-X gettext pairs is measured by layer before and after. The pooling
is a setting (``pooling``), passed explicitly.
"""

import copy
import hashlib
import random
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional, Tuple

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback, set_seed

from tools.experiments import cldr_task
from transformers_align.data.features import AlignmentCollator, FeatureOptions, tokenize_rows
from transformers_align.data.gettext_pairs import gettext_pairs
from transformers_align.errors import UserError
from transformers_align.evaluation.alignment_analysis import analysis_settings, analyze_alignment
from transformers_align.evaluation.loglikelihood import candidate_logprobs
from transformers_align.modeling import patch_model
from transformers_align.training.arguments import AlignmentTrainingArguments
from transformers_align.training.launch import silence_library_noise
from transformers_align.training.schedule import Schedule
from transformers_align.training.trainer import AlignmentTrainer

VARIANTS = {  # variant -> the schedule of its objectives
    "baseline": Schedule("task"),
    "alternate": Schedule("alternate"),
    "joint": Schedule("joint"),
    "consistency": Schedule("joint", objective_names=("task", "consistency")),
    "alternate+consistency": Schedule("alternate", objective_names=("task", "alignment", "consistency")),
}
CONSISTENCY_VARIANTS = tuple(name for name, schedule in VARIANTS.items() if "consistency" in schedule.composed)
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class RealTransferConfig:
    """Sizes and hyper-parameters; ``quick()`` is the small slice the test runs."""

    seeds: Tuple[int, ...] = (0,)
    languages: Tuple[str, ...] = ("fr", "de", "es")  # zero-shot test languages (English is always tested)
    pair_languages: Optional[Tuple[str, ...]] = None  # alignment pairs from these test languages only (default: all)
    model_path: Optional[str] = None  # default: the SmolLM2 folder of scripts.prepare_smollm2 (converted if needed)
    split_seed: int = 0  # entity split and pair split, the same for every training seed
    test_fraction: float = 0.33  # of the entities of each kind (210 of 635 for fr, de, es)
    entity_limit: Optional[int] = None  # keep only this many entities (the quick slice)
    retrieval_pairs: int = 50  # held-out gettext pairs per language, for retrieval
    max_pair_tokens: int = 32  # longer training pairs are dropped (cost)
    steps: int = 24  # task batches each variant sees (384 examples, 0.9 epoch of the 425 training entities)
    batch_size: int = 16
    learning_rate: float = 1e-3
    lora_rank: int = 8
    lora_targets: Tuple[str, ...] = LORA_TARGETS
    alignment_layer: Optional[int] = None  # default: the middle block
    temperature: float = 0.05  # the default run's (issue 10)
    pooling: str = "mean"  # the library's: mean without the first token (contrastive_pooling_skip_first=1)
    num_layers: Optional[int] = None  # keep only the first n blocks (the quick slice)
    threads: int = 1
    eval_batch_size: int = 32
    variants: Tuple[str, ...] = tuple(VARIANTS)

    def __post_init__(self):
        unknown = [variant for variant in self.variants if variant not in VARIANTS]
        if unknown or "baseline" not in self.variants:
            raise ValueError(
                f"variants {','.join(self.variants)}: choose among {', '.join(VARIANTS)}, baseline included "
                "(the gains are measured against it)"
            )
        if self.pair_languages and not set(self.pair_languages) <= set(self.languages):
            raise UserError(
                f"pair languages {','.join(self.pair_languages)} must be among the test languages "
                f"{','.join(self.languages)}"
            )

    @classmethod
    def quick(cls) -> "RealTransferConfig":
        return cls(
            languages=("fr", "de"),
            entity_limit=30,
            test_fraction=0.5,
            retrieval_pairs=4,
            steps=4,
            batch_size=4,
            learning_rate=3e-3,
        )


def load_model(config: RealTransferConfig):
    """The fp32 model and tokenizer (the converted SmolLM2 unless ``model_path``), in eval mode."""
    path = config.model_path
    if path is None:
        from transformers_align.modeling.gguf_checkpoint import prepare_smollm2

        path = prepare_smollm2()
    overrides = {"num_hidden_layers": config.num_layers} if config.num_layers else {}
    model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32, **overrides)
    return model.eval(), AutoTokenizer.from_pretrained(path)


@dataclass
class TransferData:
    train: List[cldr_task.Entity]
    test: List[cldr_task.Entity]
    pairs: List[Tuple[str, str]]  # training EN-X pairs of the pair languages, shuffled
    retrieval: Dict[str, List[Tuple[str, str]]]  # language -> held-out EN-X pairs
    notes: Dict[str, int]


def build_data(config: RealTransferConfig, tokenizer) -> TransferData:
    """Entity split, training pairs (short, naming no entity) and held-out retrieval pairs."""
    entities = cldr_task.build_entities(config.languages)
    if config.entity_limit:
        entities = sorted(entities, key=lambda e: _slice_key(e, config.split_seed))[: config.entity_limit]
    train, test = cldr_task.split_entities(entities, config.test_fraction, config.split_seed)
    tagged, retrieval, notes = [], {}, {"pairs_naming_an_entity": 0, "pairs_too_long": 0}
    for language, (train_pairs, test_pairs) in gettext_pairs(
        config.languages, config.retrieval_pairs, config.split_seed
    ).items():
        kept, dropped = cldr_task.drop_pairs_mentioning(train_pairs, entities)
        notes["pairs_naming_an_entity"] += dropped
        short = [
            pair for pair in kept if max(len(tokenizer(side).input_ids) for side in pair) <= config.max_pair_tokens
        ]
        notes["pairs_too_long"] += len(kept) - len(short)
        notes[f"pairs_{language}"] = len(short)
        tagged += [(language, pair) for pair in short]
        retrieval[language] = test_pairs
    # Shuffled before the pair languages are picked, so a subset keeps the order it has in the full run.
    random.Random(config.split_seed).shuffle(tagged)
    pairs = [pair for language, pair in tagged if language in (config.pair_languages or config.languages)]
    return TransferData(train, test, pairs, retrieval, notes)


def _slice_key(entity: cldr_task.Entity, seed: int) -> str:
    """A seeded, order-free sort key (the quick slice keeps a spread of kinds and continents)."""
    return hashlib.sha256(f"{seed}-{entity.kind}-{entity.code}".encode()).hexdigest()


def training_rows(data: TransferData, config: RealTransferConfig) -> List[Dict]:
    """steps x batch rows: English task row i (cycling over the training entities) with pair i (cycling
    over the pairs) and, for the consistency variants, its prompt in test language i mod n (the pair
    languages) as ``prefix_translated``."""
    count = config.steps * config.batch_size
    languages = config.pair_languages or config.languages
    rows = []
    for i in range(count):
        entity = data.train[i % len(data.train)]
        row = {
            "prefix": cldr_task.prompt(entity, "en"),
            "text": cldr_task.answer(entity),
            "text_parallel_0": data.pairs[i % len(data.pairs)][0],
            "text_parallel_1": data.pairs[i % len(data.pairs)][1],
        }
        if any(variant in CONSISTENCY_VARIANTS for variant in config.variants):
            row["prefix_translated"] = cldr_task.prompt(entity, languages[i % len(languages)])
        rows.append(row)
    return rows


def finetune(base, tokenizer, features, variant: str, config: RealTransferConfig, seed: int, progress: bool):
    """A LoRA copy of ``base`` trained as ``variant``; returns it (eval mode) and its first/last logged losses."""
    from peft import LoraConfig, get_peft_model

    set_seed(seed)
    model = get_peft_model(
        copy.deepcopy(base),
        LoraConfig(
            r=config.lora_rank,
            lora_alpha=2 * config.lora_rank,
            lora_dropout=0.0,
            task_type="CAUSAL_LM",
            target_modules=list(config.lora_targets),
        ),
    )
    schedule = VARIANTS[variant]
    steps = config.steps * schedule.period  # the task sees config.steps batches in every variant
    with tempfile.TemporaryDirectory() as output_dir:
        args = AlignmentTrainingArguments(
            output_dir=output_dir,
            training_mode=schedule.mode,
            objectives=",".join(schedule.objective_names) if schedule.objective_names else None,
            seed=seed,
            use_cpu=True,
            report_to=[],
            save_strategy="no",
            max_steps=steps,
            per_device_train_batch_size=config.batch_size,
            learning_rate=config.learning_rate,
            weight_decay=0.0,
            lr_scheduler_type="linear",
            warmup_ratio=0.05,
            logging_steps=1,
            dataloader_num_workers=0,
            remove_unused_columns=False,
            disable_tqdm=not progress,
        )
        # No padding to a multiple of 8: the prompts are ~11 tokens, and padding would cost half as much again.
        trainer = AlignmentTrainer(
            model=model,
            args=args,
            train_dataset=features,
            data_collator=AlignmentCollator(tokenizer.pad_token_id, pad_to_multiple_of=None),
        )
        trainer.remove_callback(PrinterCallback)
        trainer.train()
    losses = {}
    for name in ("task_loss", "alignment_loss", "consistency_loss"):
        values = [entry[name] for entry in trainer.state.log_history if name in entry]
        if values:
            losses[name] = {
                "first": values[0],
                "last": values[-1],
                "mean_last_10": sum(values[-10:]) / len(values[-10:]),
            }
    return model.eval(), losses


def answer_scores(model, tokenizer, entities, language: str, batch_size: int) -> List[List[float]]:
    """Log-likelihood of each continent name after each entity's prompt in ``language`` (rows in entity order)."""
    prompts = tokenizer([cldr_task.prompt(entity, language) for entity in entities]).input_ids
    candidates = [tokenizer(f" {label}", add_special_tokens=False).input_ids for label in cldr_task.continent_labels()]
    return candidate_logprobs(model, prompts, candidates, batch_size).tolist()


def accuracy(scores: List[List[float]], gold: List[int]) -> float:
    return sum(max(range(len(row)), key=row.__getitem__) == answer for row, answer in zip(scores, gold)) / len(gold)


def evaluate(model, tokenizer, data: TransferData, config: RealTransferConfig, layer: int) -> dict:
    """Scores and accuracy per language (English first) and retrieval by layer per language."""
    labels = cldr_task.continent_labels()
    gold = [labels.index(entity.continent) for entity in data.test]
    result = {"accuracy": {}, "scores": {}, "retrieval": {}}
    for language in ("en",) + tuple(config.languages):
        scores = answer_scores(model, tokenizer, data.test, language, config.eval_batch_size)
        result["scores"][language] = [[round(value, 4) for value in row] for row in scores]
        result["accuracy"][language] = accuracy(result["scores"][language], gold)
    for language, pairs in data.retrieval.items():
        settings = analysis_settings(model, pooling=config.pooling, layer=layer)
        report = analyze_alignment(model, tokenizer, pairs, settings, batch_size=config.eval_batch_size, progress=False)
        result["retrieval"][language] = {
            "en_to_x": [row["retrieval_0_to_1"] for row in report["layers"]],
            "cosine_true_at_layer": report["layers"][layer - 1]["cosine_true"],
            "cosine_random_at_layer": report["layers"][layer - 1]["cosine_random"],
        }
    return result


def run_experiment(
    config: RealTransferConfig, progress: bool = True, on_update: Optional[Callable[[dict], None]] = None
) -> dict:
    """The whole experiment on ``config.threads`` torch threads (restored after); a JSON-ready dict.

    ``on_update`` gets the result so far after each evaluated model (``"finished"`` is False until the end),
    so that a long run interrupted midway still leaves the variants it finished.
    """
    silence_library_noise()  # no DeepSpeed import (and its accelerator warning) when DeepSpeed is not used
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _run(config, progress, on_update or (lambda result: None))
    finally:
        torch.set_num_threads(threads)


def _run(config: RealTransferConfig, progress: bool, on_update: Callable[[dict], None]) -> dict:
    started = time.perf_counter()
    base, tokenizer = load_model(config)
    data = build_data(config, tokenizer)
    patch_model(
        base,
        additional_loss_layer=config.alignment_layer,
        contrastive_loss_temperature=config.temperature,
        contrastive_pooling_type=config.pooling,
    )
    layer = base.config.additional_loss_layer
    features = tokenize_rows(
        tokenizer, training_rows(data, config), FeatureOptions(block_size=64, pair_max_length=config.max_pair_tokens)
    )
    labels = cldr_task.continent_labels()
    result = {
        "config": asdict(config),
        "alignment_layer": layer,
        "num_layers": base.config.num_hidden_layers,
        "labels": labels,
        "chance": 1 / len(labels),
        "majority_by_kind": majority_by_kind(data),
        "test_entities": [
            {"kind": e.kind, "code": e.code, "continent": e.continent, "names": dict(e.names)} for e in data.test
        ],
        "train_entities": len(data.train),
        "training_pairs": len(data.pairs),
        "data_notes": data.notes,
        "retrieval_pairs": {language: len(pairs) for language, pairs in data.retrieval.items()},
        "torch_threads": config.threads,
        "finished": False,
        "timings": {"setup_s": round(time.perf_counter() - started, 1)},
        "runs": {},
    }
    timings, runs = result["timings"], result["runs"]
    begin = time.perf_counter()
    runs["pretrained"] = evaluate(base, tokenizer, data, config, layer)
    timings["pretrained_eval_s"] = round(time.perf_counter() - begin, 1)
    on_update(result)
    for seed in config.seeds:
        for variant in config.variants:
            begin = time.perf_counter()
            model, losses = finetune(base, tokenizer, features, variant, config, seed, progress)
            trained = time.perf_counter()
            runs[f"{variant}/seed{seed}"] = {
                "variant": variant,
                "seed": seed,
                "losses": losses,
                **evaluate(model, tokenizer, data, config, layer),
            }
            timings[f"{variant}/seed{seed}"] = {
                "train_s": round(trained - begin, 1),
                "eval_s": round(time.perf_counter() - trained, 1),
            }
            timings["total_s"] = round(time.perf_counter() - started, 1)
            del model
            on_update(result)
    result["finished"] = True
    return result


def majority_by_kind(data: TransferData) -> float:
    """Test accuracy of answering each kind with its most frequent training continent (ties: first label)."""
    labels = cldr_task.continent_labels()
    best = {}
    for kind in cldr_task.KINDS:
        answers = [entity.continent for entity in data.train if entity.kind == kind]
        if answers:
            best[kind] = max(labels, key=answers.count)
    return sum(best.get(entity.kind) == entity.continent for entity in data.test) / len(data.test)
