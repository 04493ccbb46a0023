"""Two artificial languages from one grammar: shared meanings, disjoint word forms, different word orders.

A meaning fills semantic slots from a shared concept inventory: an agent and a distinct patient (both
entities), an action, and optionally a place and a time; ``Grammar`` says how likely each meaning is.
Language A renders it SVO with an article before each entity, a preposition before the place and the time last:
``art AGENT ACTION art PATIENT (prep PLACE)? TIME?``. Language B renders it SOV with an object marker,
a postposition after the place and the time first: ``TIME? AGENT (PLACE post)? PATIENT obj ACTION``.
Every word form is a generated syllable string; A's and B's use disjoint consonants, so none is shared.
The task tokens (slot questions, concept labels) are language-neutral and appear in no sentence.
"""

import random
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

BOS, EOS, PAD, UNK = "<s>", "</s>", "<pad>", "<unk>"
SLOT_SIZES = {"entity": 12, "action": 10, "place": 8, "time": 6}
QUESTIONS = {"agent": "entity", "patient": "entity", "action": "action", "place": "place"}  # asked slot -> concept kind
FUNCTION_WORDS = {"A": ("article", "preposition"), "B": ("object_marker", "postposition")}
SYLLABLES = {"A": ("ptkmnls", "aeiou"), "B": ("bdgvzrh", "aiuy")}  # (consonants, vowels): disjoint consonants


@dataclass(frozen=True)
class Meaning:
    """One sentence's semantics: concept indices per slot (place and time may be absent)."""

    agent: int
    action: int
    patient: int
    place: Optional[int] = None
    time: Optional[int] = None


def question_token(slot: str) -> str:
    return f"<ask_{slot}>"


def label_token(kind: str, index: int) -> str:
    return f"<{kind}_{index}>"


def _word_forms(language: str, count: int, rng: random.Random, taken: set) -> List[str]:
    consonants, vowels = SYLLABLES[language]
    forms = []
    while len(forms) < count:
        form = "".join(rng.choice(consonants) + rng.choice(vowels) for _ in range(rng.choice((2, 2, 3))))
        if form not in taken:
            taken.add(form)
            forms.append(form)
    return forms


class Lexicon:
    """The word forms of both languages for a seed: ``words[language][kind][index]`` and function words."""

    def __init__(self, seed: int):
        rng = random.Random(f"lexicon-{seed}")
        self.words: Dict[str, Dict[str, List[str]]] = {}
        self.function: Dict[str, Dict[str, str]] = {}
        for language in ("A", "B"):
            taken = set()
            self.words[language] = {kind: _word_forms(language, size, rng, taken) for kind, size in SLOT_SIZES.items()}
            names = FUNCTION_WORDS[language]
            self.function[language] = dict(zip(names, _word_forms(language, len(names), rng, taken)))

    def vocabulary(self, language: str) -> List[str]:
        """Every word form of ``language``."""
        forms = [form for kind in SLOT_SIZES for form in self.words[language][kind]]
        return forms + list(self.function[language].values())

    def render(self, meaning: Meaning, language: str) -> str:
        """The sentence of ``meaning`` in ``language`` (A: SVO, prepositions; B: SOV, postpositions)."""
        words, function = self.words[language], self.function[language]
        agent, patient = words["entity"][meaning.agent], words["entity"][meaning.patient]
        action = words["action"][meaning.action]
        place = None if meaning.place is None else words["place"][meaning.place]
        time = [] if meaning.time is None else [words["time"][meaning.time]]
        if language == "A":
            place_phrase = [] if place is None else [function["preposition"], place]
            tokens = [function["article"], agent, action, function["article"], patient] + place_phrase + time
        else:
            place_phrase = [] if place is None else [place, function["postposition"]]
            tokens = time + [agent] + place_phrase + [patient, function["object_marker"], action]
        return " ".join(tokens)


class Grammar:
    """The shared semantics of both languages: a seeded distribution over meanings.

    Each action prefers a few agents, patients and places (chosen with probability ``preference``, else
    uniformly), so every concept has its own co-occurrence profile, the same in both languages: the
    structure that lets monolingual text shape comparable representations. Times are uniform.
    """

    PREFERRED = {"agent": ("entity", 3), "patient": ("entity", 4), "place": ("place", 2)}

    def __init__(self, seed: int, preference: float = 0.8, place_rate: float = 0.6, time_rate: float = 0.5):
        rng = random.Random(f"grammar-{seed}")
        self.preferred = [
            {slot: rng.sample(range(SLOT_SIZES[kind]), count) for slot, (kind, count) in self.PREFERRED.items()}
            for _ in range(SLOT_SIZES["action"])
        ]
        self.preference, self.place_rate, self.time_rate = preference, place_rate, time_rate

    def _pick(self, rng: random.Random, action: int, slot: str, avoid: Optional[int] = None) -> int:
        while True:
            size = SLOT_SIZES[self.PREFERRED[slot][0]]
            value = rng.choice(self.preferred[action][slot]) if rng.random() < self.preference else rng.randrange(size)
            if value != avoid:
                return value

    def sample(self, rng: random.Random) -> Meaning:
        action = rng.randrange(SLOT_SIZES["action"])
        agent = self._pick(rng, action, "agent")
        return Meaning(
            agent=agent,
            action=action,
            patient=self._pick(rng, action, "patient", avoid=agent),
            place=self._pick(rng, action, "place") if rng.random() < self.place_rate else None,
            time=rng.randrange(SLOT_SIZES["time"]) if rng.random() < self.time_rate else None,
        )

    def sample_many(self, rng: random.Random, count: int, exclude=frozenset()) -> List[Meaning]:
        """``count`` meanings, none of them in ``exclude`` (repeats among themselves allowed)."""
        meanings = []
        while len(meanings) < count:
            meaning = self.sample(rng)
            if meaning not in exclude:
                meanings.append(meaning)
        return meanings


def questions_for(meaning: Meaning) -> List[Tuple[str, str]]:
    """``(question token, answer label token)`` for each slot of ``meaning`` that can be asked."""
    asked = []
    for slot, kind in QUESTIONS.items():
        value = getattr(meaning, slot)
        if value is not None:
            asked.append((question_token(slot), label_token(kind, value)))
    return asked


def candidate_labels(question: str) -> List[str]:
    """The label tokens a question can be answered with (its concept kind's inventory)."""
    kind = QUESTIONS[question[len("<ask_") : -1]]
    return [label_token(kind, index) for index in range(SLOT_SIZES[kind])]


def task_tokens() -> List[str]:
    """Language-neutral tokens of the task: the slot questions and every concept label."""
    labels = [label_token(kind, index) for kind, size in SLOT_SIZES.items() for index in range(size)]
    return [question_token(slot) for slot in QUESTIONS] + labels


def word_level_tokenizer(lexicon: Lexicon) -> PreTrainedTokenizerFast:
    """One token per word (both languages, the task tokens); it adds BOS, pads right, EOS ends completions."""
    tokens = [PAD, BOS, EOS, UNK] + lexicon.vocabulary("A") + lexicon.vocabulary("B") + task_tokens()
    core = Tokenizer(models.WordLevel(vocab={token: index for index, token in enumerate(tokens)}, unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    core.add_special_tokens([PAD, BOS, EOS, UNK])
    core.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", special_tokens=[(BOS, core.token_to_id(BOS))]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        padding_side="right",
        model_input_names=["input_ids", "attention_mask"],
    )
