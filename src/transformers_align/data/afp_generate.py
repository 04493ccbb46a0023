"""AFP's training data: contrastive pairs (sent0/sent1) plus cross-lingual instruction or translation samples.

Every builder writes JSON Lines records ``{"sent0", "sent1", "clm_text", "clm_prompt_len"}`` with AFP's
templates and file names; ``clm_prompt_len`` counts the *characters* of ``clm_text`` before the response.
Output depends only on the inputs and the seed (each builder owns a ``random.Random(seed)``).

Input checks. Bactrian-X ``{lang}.json``: a record that is not an object, lacks a field, or has a non-string
field is an error naming the file, record and field; so is an id repeated within a file. Records are
aligned by ``id`` (not by position, as AFP does): ids missing from some language, and records with an
empty ``instruction`` or ``output`` in any language, are skipped and counted; identical instructions
give no contrastive pair (AFP's rule), also counted. Translation TSV: a line without exactly one tab is
an error naming the file and line; blank lines are ignored, lines with an empty side skipped and counted.
"""

import logging
import math
import random
from collections import Counter
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from transformers_align.data.jsonl import DataFormatError, iter_jsonl, read_json, write_jsonl
from transformers_align.data.languages import language_name
from transformers_align.data.records import iter_tsv_rows
from transformers_align.errors import UserError
from transformers_align.paths import refuse_output_over_inputs

logger = logging.getLogger(__name__)

CIT_TEMPLATE = "{instruction} {input} Answer in {tgt_lang}: {output}"
CIT_TEMPLATE_NO_INPUT = "{instruction} Answer in {tgt_lang}: {output}"
TRANSLATION_TEMPLATES = ("{input} Translate into {tgt_lang}: {output}", "{input} = {output}")
BACTRIAN_FIELDS = ("instruction", "input", "id", "output")
RECORD_KEYS = ("sent0", "sent1", "clm_text", "clm_prompt_len")


def _number(value: float) -> str:
    """A probability or repeat count as AFP prints it in file names (argparse floats: 0.5, 3.0)."""
    return str(float(value))


def bilingual_file_name(languages, cross_probability, repeat) -> str:
    return f"AFP.{'_'.join(languages)}.X{_number(cross_probability)}.R{_number(repeat)}.json"


def crosslingual_file_name(languages, cross_probability, change_probability, repeat) -> str:
    cross, change = _number(cross_probability), _number(change_probability)
    return f"AFP.{'_'.join(languages)}.X{cross}.C{change}.R{_number(repeat)}.json"


def translation_file_name(languages, change_probability, repeat) -> str:
    return f"AFP.{languages[0]}-{languages[1]}-trans.C{_number(change_probability)}.R{_number(repeat)}.json"


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise UserError(f"{name} must be between 0 and 1, got {value}")


def _check_languages(languages: Sequence[str], count: str) -> None:
    for code in languages:
        language_name(code)
    if len(set(languages)) != len(languages):
        raise UserError(f"languages must be distinct, got {list(languages)}")
    if (count == "two" and len(languages) != 2) or (count == "more" and len(languages) <= 2):
        wanted = "exactly 2" if count == "two" else "more than 2"
        raise UserError(f"this mode needs {wanted} languages (the first is the pivot), got {list(languages)}")


def _sample_indices(count: int, repeat: float, rng: random.Random) -> List[int]:
    """``int(repeat * count)`` indices: ceil(repeat) shuffled copies of ``range(count)``, cut to length."""
    if not repeat > 0:
        raise UserError(f"repeat must be > 0, got {repeat}")
    total = int(repeat * count)
    if total == 0:
        raise UserError(f"repeat={repeat} over {count} source items gives no samples")
    indices = list(range(count)) * math.ceil(repeat)
    rng.shuffle(indices)
    return indices[:total]


def _record(sent0: str, sent1: str, clm_text: str, response: str) -> dict:
    return {"sent0": sent0, "sent1": sent1, "clm_text": clm_text, "clm_prompt_len": len(clm_text) - len(response)}


def _log_skips(source: str, skipped: Counter) -> None:
    for reason, count in sorted(skipped.items()):
        logger.warning(f"{source}: skipped {count} item(s): {reason}")


def _read_bactrian_file(path: Path) -> Dict[str, dict]:
    """``{id: record}`` of one Bactrian-X file, with every field a string (a null ``input`` becomes "")."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (expected Bactrian-X's {{lang}}.json, a JSON array)")
    records = read_json(path)
    if not isinstance(records, list):
        raise DataFormatError(f"{path}: expected a JSON array of records, got {type(records).__name__}")
    by_id, first_index = {}, {}
    for index, record in enumerate(records):
        where = f"{path}: record {index}"
        if not isinstance(record, dict):
            raise DataFormatError(f"{where}: expected an object, got {type(record).__name__}")
        for field in BACTRIAN_FIELDS:
            if field not in record:
                raise DataFormatError(f"{where}: missing field {field!r}")
            if field == "input" and record[field] is None:
                continue
            if not isinstance(record[field], str):
                raise DataFormatError(f"{where}: field {field!r} must be a string, got {type(record[field]).__name__}")
        if record["id"] in by_id:
            raise DataFormatError(
                f"{where}: duplicate id {record['id']!r} (first seen at record {first_index[record['id']]})"
            )
        first_index[record["id"]] = index
        by_id[record["id"]] = {**record, "input": record["input"] or ""}
    return by_id


def load_bactrian(bactrian_dir, languages: Sequence[str]) -> Tuple[Dict[str, Dict[str, dict]], List[str], Counter]:
    """Records of each language by id, the sorted ids usable in every language, and the skip counts."""
    data = {lang: _read_bactrian_file(Path(bactrian_dir) / f"{lang}.json") for lang in languages}
    skipped = Counter()
    all_ids = set().union(*(set(records) for records in data.values()))
    ids = []
    for record_id in sorted(all_ids):
        missing = [lang for lang in languages if record_id not in data[lang]]
        if missing:
            skipped[f"id missing from {', '.join(missing)}"] += 1
            continue
        empty = [
            f"{lang} {field}"
            for lang in languages
            for field in ("instruction", "output")
            if not data[lang][record_id][field].strip()
        ]
        if empty:
            skipped[f"empty {empty[0]}"] += 1
            continue
        ids.append(record_id)
    _log_skips(str(bactrian_dir), skipped)
    if not ids:
        raise DataFormatError(f"{bactrian_dir}: no id has a complete record in every language of {list(languages)}")
    return data, ids, skipped


def _instruction_pairs(data, ids, pivot: str, other: str, skipped: Counter) -> List[Tuple[str, str]]:
    """AFP's contrastive pairs: the pivot's instruction and its counterpart (identical ones are dropped)."""
    pairs = []
    for record_id in ids:
        first, second = data[pivot][record_id]["instruction"], data[other][record_id]["instruction"]
        if first == second:
            skipped[f"identical {pivot}/{other} instructions (no contrastive pair)"] += 1
            continue
        pairs.append((first, second))
    if not pairs:
        raise DataFormatError(f"no {pivot}/{other} instruction pair differs: nothing to contrast")
    return pairs


def cit_text(source: dict, output: str, target_language: str) -> str:
    """AFP's cross-lingual instruction sample: the source instruction (and input), answered in the target language."""
    template = CIT_TEMPLATE if source["input"].strip() else CIT_TEMPLATE_NO_INPUT
    return template.format(
        instruction=source["instruction"], input=source["input"], tgt_lang=target_language, output=output
    )


def build_bilingual(
    bactrian_dir, languages: Sequence[str], cross_probability: float = 0.5, repeat: float = 3.0, seed: int = 0
) -> Tuple[List[dict], Counter]:
    """AFP ``--mode bilingual``: int(repeat*N) CIT samples, each carrying the next pair of a shuffled pair list.

    Each sample takes instruction and input from a random language and, with ``cross_probability``, the
    response of the same id in the other language (else its own); the pair list is reshuffled when used up.
    """
    _check_languages(languages, "two")
    _check_probability("cross_probability", cross_probability)
    rng = random.Random(seed)
    data, ids, skipped = load_bactrian(bactrian_dir, languages)
    pairs = _instruction_pairs(data, ids, languages[0], languages[1], skipped)
    rng.shuffle(pairs)
    records, next_pair = [], 0
    for index in _sample_indices(len(ids), repeat, rng):
        source = rng.choice(languages)
        target = (
            (languages[1] if source == languages[0] else languages[0]) if rng.random() < cross_probability else source
        )
        output = data[target][ids[index]]["output"]
        if next_pair == len(pairs):
            rng.shuffle(pairs)
            next_pair = 0
        records.append(
            _record(*pairs[next_pair], cit_text(data[source][ids[index]], output, language_name(target)), output)
        )
        next_pair += 1
    rng.shuffle(records)
    return records, skipped


def build_crosslingual(
    bactrian_dir,
    languages: Sequence[str],
    cross_probability: float = 0.5,
    change_probability: float = 0.5,
    repeat: float = 3.0,
    seed: int = 0,
) -> Tuple[List[dict], Counter]:
    """AFP ``--mode crosslingual`` (3+ languages, the first is the pivot).

    Per sample a non-pivot language X is drawn and the pair is a random pivot/X instruction pair. With
    probability 1-``cross_probability`` the CIT sample is monolingual in a random language; otherwise it is
    pivot -> X, turned into X -> pivot with ``change_probability``.
    """
    _check_languages(languages, "more")
    _check_probability("cross_probability", cross_probability)
    _check_probability("change_probability", change_probability)
    rng = random.Random(seed)
    data, ids, skipped = load_bactrian(bactrian_dir, languages)
    pivot, others = languages[0], list(languages[1:])
    pairs = {lang: _instruction_pairs(data, ids, pivot, lang, skipped) for lang in others}
    records, directions = [], Counter()
    for index in _sample_indices(len(ids), repeat, rng):
        partner = rng.choice(others)
        source, target = pivot, partner
        if rng.random() >= cross_probability:
            source = target = rng.choice(languages)
        elif rng.random() < change_probability:
            source, target = partner, pivot
        directions[f"{source}->{target}"] += 1
        output = data[target][ids[index]]["output"]
        text = cit_text(data[source][ids[index]], output, language_name(target))
        records.append(_record(*rng.choice(pairs[partner]), text, output))
    rng.shuffle(records)
    logger.info("CIT directions: " + ", ".join(f"{key} {count}" for key, count in sorted(directions.items())))
    return records, skipped


def read_translation_tsv(path) -> Tuple[List[Tuple[str, str]], Counter]:
    """``source<TAB>target`` pairs (first column = first language), no header; see the module doc for checks."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (expected a two-column TSV: source<TAB>target)")
    pairs, skipped = [], Counter()
    for _, (source, target) in iter_tsv_rows(path, ("source", "target")):
        source, target = source.strip(), target.strip()
        if not source or not target:
            skipped["empty source" if not source else "empty target"] += 1
            continue
        pairs.append((source, target))
    _log_skips(str(path), skipped)
    if not pairs:
        raise DataFormatError(f"{path}: no usable translation pair")
    return pairs, skipped


def build_translation(
    translation_file, languages: Sequence[str], change_probability: float = 0.5, repeat: float = 3.0, seed: int = 0
) -> Tuple[List[dict], Counter]:
    """AFP ``--mode translation``: int(repeat*M) samples; direction swapped with ``change_probability``.

    The pair itself is the contrastive pair and the CLM sample is one of AFP's two translation templates.
    """
    _check_languages(languages, "two")
    _check_probability("change_probability", change_probability)
    rng = random.Random(seed)
    pairs, skipped = read_translation_tsv(translation_file)
    records = []
    for index in _sample_indices(len(pairs), repeat, rng):
        (source, target), target_language = pairs[index], languages[1]
        if rng.random() < change_probability:
            source, target, target_language = target, source, languages[0]
        text = rng.choice(TRANSLATION_TEMPLATES).format(
            input=source, tgt_lang=language_name(target_language), output=target
        )
        records.append(_record(source, target, text, target))
    rng.shuffle(records)
    return records, skipped


def read_afp_records(path) -> List[dict]:
    """The records of an AFP JSON Lines file, each checked for the four keys."""
    records = []
    for line_number, record in iter_jsonl(path):
        missing = [key for key in RECORD_KEYS if key not in record]
        if missing:
            raise DataFormatError(f"{path}:{line_number}: missing field {missing[0]!r}")
        records.append(record)
    return records


def merge_files(inputs: Sequence, output, seed: int = 0) -> Path:
    """AFP's ``cat bilingual translation | shuf``, but deterministic: all records shuffled with ``seed``."""
    refuse_output_over_inputs({"--output_file": output}, {"--inputs": inputs})
    records = [record for path in inputs for record in read_afp_records(path)]
    random.Random(seed).shuffle(records)
    return write_jsonl(Path(output), records)


def generate(
    mode: str,
    languages: Sequence[str],
    output_dir,
    cross_probability: float = 0.5,
    change_probability: float = 0.5,
    repeat: float = 3.0,
    bactrian_dir=None,
    translation_file=None,
    seed: int = 0,
) -> Path:
    """Build one AFP file (``bilingual``, ``translation`` or ``crosslingual``) into ``output_dir``; returns its path."""
    if mode in ("bilingual", "crosslingual") and bactrian_dir is None:
        raise UserError(f"--mode {mode} needs the Bactrian-X folder (--bactrian_dir)")
    if mode == "translation" and translation_file is None:
        raise UserError("--mode translation needs the parallel TSV (--translation_file)")
    names = {
        "bilingual": lambda: bilingual_file_name(languages, cross_probability, repeat),
        "crosslingual": lambda: crosslingual_file_name(languages, cross_probability, change_probability, repeat),
        "translation": lambda: translation_file_name(languages, change_probability, repeat),
    }
    if mode not in names:
        raise UserError(f"unknown mode {mode!r}; choose bilingual, translation or crosslingual")
    output = Path(output_dir) / names[mode]()
    refuse_output_over_inputs(
        {"--output_dir": output}, {"--bactrian_dir": bactrian_dir, "--translation_file": translation_file}
    )
    if mode == "bilingual":
        records, _ = build_bilingual(bactrian_dir, languages, cross_probability, repeat, seed)
    elif mode == "crosslingual":
        records, _ = build_crosslingual(bactrian_dir, languages, cross_probability, change_probability, repeat, seed)
    else:
        records, _ = build_translation(translation_file, languages, change_probability, repeat, seed)
    path = write_jsonl(output, records)
    logger.info(f"wrote {len(records)} records to {path}")
    return path
