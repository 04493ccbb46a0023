"""Chat prompts as training and inference text: one system and one user turn, BOS left to the tokenizer."""

from pathlib import Path

from transformers_align.tiny import CHAT_TEMPLATE as MIDALIGN_CHAT_TEMPLATE

CHAT_TEMPLATE_CHOICES = (
    "'model' (the tokenizer's own), 'midalign' (Llama-3 format, newline after <|eot_id|>) or a Jinja file"
)


def adds_bos(tokenizer) -> bool:
    """Whether encoding text with default special tokens puts the BOS token first."""
    if tokenizer.bos_token_id is None:
        return False
    return tokenizer("a")["input_ids"][:1] == [tokenizer.bos_token_id]


def chat_prompt(tokenizer, system: str, user: str) -> str:
    """The generation prompt for ``[system, user]`` from the tokenizer's chat template, as text.

    If the template writes the BOS string and the tokenizer also adds BOS when it encodes, the textual
    one is removed, so that encoding the prompt gives exactly one BOS, as encoding training text does.
    """
    messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    bos = tokenizer.bos_token
    if bos and text.startswith(bos) and adds_bos(tokenizer):
        text = text[len(bos) :]
    return text


def use_chat_template(tokenizer, choice: str = "model"):
    """Set the tokenizer's chat template from a ``--chat_template`` value; returns the tokenizer.

    ``model`` keeps the tokenizer's own template, ``midalign`` uses mid-align's training format (Llama-3
    headers, "\\n" after every <|eot_id|>, no BOS in the text), anything else is read as a Jinja file.
    """
    if choice == "midalign":
        tokenizer.chat_template = MIDALIGN_CHAT_TEMPLATE
    elif choice != "model":
        path = Path(choice)
        if not path.is_file():
            raise FileNotFoundError(f"--chat_template {choice!r}: not a file; use {CHAT_TEMPLATE_CHOICES}")
        tokenizer.chat_template = path.read_text(encoding="utf-8")
    if not tokenizer.chat_template:
        raise ValueError(
            f"the tokenizer {tokenizer.name_or_path!r} has no chat template; pass --chat_template "
            f"with {CHAT_TEMPLATE_CHOICES}"
        )
    return tokenizer
