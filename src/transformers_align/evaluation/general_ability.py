"""What an adapter costs the model's general ability: held-out English bits per byte, and fixed general questions.

- **Held-out English text**: the first ``PARAGRAPHS`` prose paragraphs (at least 30 words, no code, grammar or
  tables) of the documentation topics that ship with Python itself (``pydoc_data.topics``, the text of
  ``help("if")``): real English prose, available offline, and in nothing this library trains on. Each
  paragraph is scored from its first token on: bits per byte = the summed negative log-likelihood (in bits)
  of the paragraph's tokens after the first, over the UTF-8 bytes those tokens decode to; perplexity is
  ``exp`` of the mean negative log-likelihood per token.
- **General questions** (``QUESTIONS``): greedy answers in the model's chat template; an answer is right
  when it contains the expected word (whole word, any case). The cost is how many of the questions the
  base model gets right stay right with the adapter.
"""

import math
import re
from typing import Dict, List, Sequence, Tuple

from transformers_align.data.chat import chat_prompt
from transformers_align.evaluation.generation import generate_greedy
from transformers_align.evaluation.loglikelihood import continuation_logprobs

PARAGRAPHS = 40
SOURCE = "Python's pydoc_data.topics (prose paragraphs)"
SYSTEM_PROMPT = "You are a helpful assistant. Answer briefly."
# (question, words any of which makes the answer right)
QUESTIONS: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ("What is the capital of France?", ("Paris",)),
    ("What is the capital of Japan?", ("Tokyo",)),
    ("What is the capital of Italy?", ("Rome",)),
    ("What is the largest planet in our solar system?", ("Jupiter",)),
    ("Who wrote Romeo and Juliet?", ("Shakespeare",)),
    ("What color is the sky on a clear day?", ("blue",)),
    ("How many days are there in a week?", ("seven", "7")),
    ("What is the chemical formula of water?", ("H2O",)),
    ("Which language is mainly spoken in Brazil?", ("Portuguese",)),
    ("What is the opposite of hot?", ("cold",)),
)


def held_out_english(count: int = PARAGRAPHS) -> List[str]:
    """The first ``count`` prose paragraphs of Python's documentation topics, in topic order, lines joined."""
    from pydoc_data.topics import topics

    paragraphs = []
    for name in sorted(topics):
        for block in re.split(r"\n\s*\n", topics[name]):
            lines = block.split("\n")
            if any(line.startswith(" ") for line in lines) or len(block.split()) < 30:
                continue  # indented: code, grammar or a table; short: a heading or a fragment
            if re.search(r"[*=]{3}|::=|>>>", block):
                continue
            paragraphs.append(" ".join(line.strip() for line in lines))
            if len(paragraphs) == count:
                return paragraphs
    return paragraphs


def english_bits_per_byte(model, tokenizer, texts: Sequence[str], batch_size: int = 8) -> Dict[str, float]:
    """``{"bits_per_byte", "perplexity", "tokens", "bytes"}`` of ``texts``, each scored after its first token."""
    requests = []
    for text in texts:
        ids = tokenizer(text)["input_ids"]
        requests.append((ids[:1], ids[1:]))
    logprobs = continuation_logprobs(model, requests, batch_size, progress=False)
    tokens = sum(len(continuation) for _, continuation in requests)
    scored_bytes = sum(
        len(tokenizer.decode(continuation, skip_special_tokens=True).encode("utf-8")) for _, continuation in requests
    )
    nats = -sum(logprobs)
    return {
        "bits_per_byte": nats / math.log(2) / scored_bytes,
        "perplexity": math.exp(nats / tokens),
        "tokens": tokens,
        "bytes": scored_bytes,
    }


def is_right(answer: str, expected: Sequence[str]) -> bool:
    """Whether ``answer`` contains one of the ``expected`` words as a whole word, in any case."""
    return any(re.search(rf"(?<!\w){re.escape(word)}(?!\w)", answer, re.IGNORECASE) for word in expected)


def question_answers(model, tokenizer, max_new_tokens: int = 24, batch_size: int = 16) -> List[dict]:
    """``[{"question", "answer", "right"}]``: the greedy answer to each of ``QUESTIONS``."""
    prompts = [chat_prompt(tokenizer, SYSTEM_PROMPT, question) for question, _ in QUESTIONS]
    answers = generate_greedy(model, tokenizer, prompts, batch_size, max_new_tokens, desc="general questions")
    return [
        {"question": question, "answer": answer.strip(), "right": is_right(answer, expected)}
        for (question, expected), answer in zip(QUESTIONS, answers)
    ]


def general_ability(model, tokenizer, batch_size: int = 8) -> dict:
    """Held-out English bits per byte and the answers to the general questions, for one model (eval mode)."""
    return {
        "english": english_bits_per_byte(model, tokenizer, held_out_english(), batch_size),
        "questions": question_answers(model, tokenizer),
    }


def ability_cost(before: dict, after: dict) -> dict:
    """The cost section of the report: both measurements and how many base-right answers stay right."""
    right_before = [b["right"] for b in before["questions"]]
    stayed = [b["right"] and a["right"] for b, a in zip(before["questions"], after["questions"])]
    return {
        "english_text": f"{SOURCE}: {len(held_out_english())} paragraphs",
        "before": before,
        "after": after,
        "questions": len(right_before),
        "right_before": sum(right_before),
        "right_after": sum(a["right"] for a in after["questions"]),
        "stayed_right": sum(stayed),
    }


def format_ability_cost(cost: dict) -> List[str]:
    """Lines for people: bits per byte and perplexity before -> after, and the questions that stay right."""
    before, after = cost["before"]["english"], cost["after"]["english"]
    lines = [
        f"General ability (the cost), base model -> with the adapter; held-out English: {cost['english_text']}",
        f"  bits per byte {before['bits_per_byte']:.3f} -> {after['bits_per_byte']:.3f}, perplexity "
        f"{before['perplexity']:.2f} -> {after['perplexity']:.2f} ({before['tokens']} tokens)",
        f"  general questions: {cost['stayed_right']} of the {cost['right_before']} the base model answers right "
        f"stay right ({cost['right_after']}/{cost['questions']} right with the adapter)",
    ]
    for b, a in zip(cost["before"]["questions"], cost["after"]["questions"]):
        if b["right"] and not a["right"]:
            lines.append(f"    lost: {b['question']} {b['answer']!r} -> {a['answer']!r}")
    return lines
