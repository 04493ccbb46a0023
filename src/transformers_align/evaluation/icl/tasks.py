"""AFP's ICL prompts for XNLI, PAWS-X, XCOPA, XStoryCloze and XWinograd, split at the candidate answer.

Each template holds one ``{choice}``: the text before it is the context, the candidate plus the text
after it is the continuation that gets scored, so "log p(continuation | context)" ranks candidates
exactly as AFP's whole-sequence score does (the shared prefix cancels). Differences from AFP:

- XNLI: AFP's query has no ``{choice}`` (every candidate scores the same, so it always predicts "A")
  and its demonstrations answer "A/B/C" to a question that lists label words. Here the candidates and
  the demonstration answers are the label words the question lists, in the prompt language.
- PAWS-X zh: AFP's demonstrations use "，" and its query ", "; both use "，" here.
- XNLI ar: AFP's demonstration and query questions differ; the demonstration one is used for both.
- XStoryCloze: AFP glues the sentences with no space; here a space follows each sentence unless it
  ends in a CJK character or full-width punctuation (zh/ja stay unspaced).
- Prompt languages other than en/zh/ar (where a template is language-specific) fall back to the
  English wording with a warning, where AFP raises ``KeyError``.
"""

import logging
import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

from transformers_align.errors import UserError
from transformers_align.evaluation.icl import readers

logger = logging.getLogger(__name__)

ANY_LANGUAGE = "*"
_NO_SPACE_AFTER = re.compile(r"[\u2e80-\u9fff\u3000-\u303f\uff00-\uffef\uac00-\ud7af]$")


@dataclass(frozen=True)
class Task:
    """One ICL task: its files under the data folder, reader, templates and how a record fills them."""

    name: str
    dev_file: str  # relative to the data folder, with {lang}
    test_file: str
    read: Callable[..., List[dict]]  # (path, skips: Optional[SkipCounter] = None) -> records
    templates: Dict[str, str]  # prompt language (or ANY_LANGUAGE) -> template with one {choice}
    fields: Callable[[dict, str], dict]  # (record, template language) -> template fields
    choices: Callable[[dict, str], List[str]]  # (record, template language) -> candidates, gold = record["label"]
    connector: Optional[str]  # after each demonstration; None = the tokenizer's EOS token (AFP: XGLM's "</s>")


@dataclass(frozen=True)
class Item:
    """A prompt (context) and its candidate continuations; ``label`` indexes the right one."""

    context: str
    continuations: List[str]
    label: int

    @property
    def demonstration(self) -> str:
        return self.context + self.continuations[self.label]


XNLI_TEMPLATES = {
    "en": "Premise: {premise}\nHypothesis: {hypothesis}\nQuestion: What is the relationship between premise and "
    "hypothesis, entailment, neutral, or contradiction?\nAnswer: {choice}",
    "zh": "前提：{premise}\n假设：{hypothesis}\n问题: 前提和假设之间是什么关系，蕴涵，中立，还是矛盾？\n回答：{choice}",
    "ar": "شرط مسبق: {premise}\nالافتراض: {hypothesis}\n"
    "السؤال: ما هي العلاقة بين الفرضية والافتراضات؟ الحاجة محايدة. أم التناقض؟\nالإجابة: {choice}",
}
XNLI_LABEL_WORDS = {
    "en": ["entailment", "neutral", "contradiction"],
    "zh": ["蕴涵", "中立", "矛盾"],
    "ar": ["الحاجة", "محايدة", "التناقض"],
}

PAWSX_TEMPLATES = {
    "en": "{sentence1}, right? {choice}, {sentence2}",
    "zh": "{sentence1}，对吗？ {choice}，{sentence2}",
    "ar": "{sentence1}, أليس كذلك؟ {choice}, {sentence2}",
}
PAWSX_CHOICES = {"en": ["Yes", "No"], "zh": ["对", "不对"], "ar": ["نعم", "لا"]}

XCOPA_TEMPLATES = {lang: "{question}: {premise} {conjunction} {choice}" for lang in ("en", "zh", "ar")}
XCOPA_WORDS = {  # question type -> (question word, conjunction) per prompt language
    "cause": {"en": ("cause", "because"), "zh": ("起因", "因为"), "ar": ("السبب", "لأن")},
    "effect": {"en": ("effect", "so"), "zh": ("影响", "所以"), "ar": ("تأثير", "لذا")},
}


def _story(record: dict, _language: str) -> dict:
    sentences = [record[f"sentence{i}"].strip() for i in range(1, 5)]
    return {"story": "".join(s if _NO_SPACE_AFTER.search(s) else s + " " for s in sentences)}


def _xcopa_fields(record: dict, language: str) -> dict:
    question, conjunction = XCOPA_WORDS[record["question"]][language]
    return {"question": question, "premise": record["premise"], "conjunction": conjunction}


TASKS = {
    "xnli": Task(
        "xnli",
        "xnli/{lang}/dev.tsv",
        "xnli/{lang}/test.tsv",
        readers.read_xnli,
        XNLI_TEMPLATES,
        lambda r, _: {"premise": r["premise"], "hypothesis": r["hypothesis"]},
        lambda r, lang: XNLI_LABEL_WORDS[lang],
        "\n\n",
    ),
    "pawsx": Task(
        "pawsx",
        "pawsx/{lang}/dev_2k.tsv",
        "pawsx/{lang}/test_2k.tsv",
        readers.read_pawsx,
        PAWSX_TEMPLATES,
        lambda r, _: {"sentence1": r["sentence1"], "sentence2": r["sentence2"]},
        lambda r, lang: PAWSX_CHOICES[lang],
        None,
    ),
    "xcopa": Task(
        "xcopa",
        "xcopa/{lang}/val.{lang}.jsonl",
        "xcopa/{lang}/test.{lang}.jsonl",
        readers.read_xcopa,
        XCOPA_TEMPLATES,
        _xcopa_fields,
        lambda r, _: [r["choice1"], r["choice2"]],
        None,
    ),
    "xstorycloze": Task(
        "xstorycloze",
        "xstorycloze/{lang}/spring2016.val.{lang}.tsv.split_20_80_train.tsv",
        "xstorycloze/{lang}/spring2016.val.{lang}.tsv.split_20_80_eval.tsv",
        readers.read_xstorycloze,
        {ANY_LANGUAGE: "{story}{choice}"},
        _story,
        lambda r, _: [r["ending1"], r["ending2"]],
        None,
    ),
    "xwinograd": Task(
        "xwinograd",
        "xwinograd/{lang}/dev.jsonl",
        "xwinograd/{lang}/test.jsonl",
        readers.read_xwinograd,
        {ANY_LANGUAGE: "{sentence_part1}{choice}{sentence_part2}"},
        lambda r, _: {"sentence_part1": r["sentence_part1"], "sentence_part2": r["sentence_part2"]},
        lambda r, _: [r["option1"], r["option2"]],
        None,
    ),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise UserError(f"--tasks: unknown ICL task {name!r}; available: {', '.join(TASKS)}")
    return TASKS[name]


def template_language(task: Task, language: str) -> str:
    """The template language used for a prompt language: itself, the language-neutral one, or English."""
    if language in task.templates:
        return language
    if ANY_LANGUAGE in task.templates:
        return ANY_LANGUAGE
    logger.warning_once(
        f"{task.name} has no {language!r} prompt (only {', '.join(task.templates)}): using the English one"
    )
    return "en"


def render(task: Task, record: dict, language: str) -> Item:
    """The record as a prompt in ``language``'s template: context before the candidate, candidates with the rest."""
    language = template_language(task, language)
    before, after = task.templates[language].split("{choice}")
    fields = task.fields(record, language)
    return Item(
        before.format_map(fields),
        [choice + after.format_map(fields) for choice in task.choices(record, language)],
        record["label"],
    )
