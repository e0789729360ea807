"""Chat messages to model text and tokens: the one place training and inference share.

A model is only as good as the match between the text it was trained on and the
text it is asked to continue. Both sides therefore go through these functions:
inference renders ``render_prompt`` and generates; SFT/DPO train on
``render_prompt(...)`` followed by ``render_completion(...)``; both tokenize with
``encode``. No torch here, so the training data code can import it cheaply.
"""

from __future__ import annotations

from typing import Any

from ..core.errors import UserError
from .base import Messages


def render_prompt(tokenizer: Any, messages: Messages) -> str:
    """The model's chat template applied to ``messages``, ending where the assistant's answer starts."""
    if not getattr(tokenizer, "chat_template", None):
        raise UserError(f"tokenizer {getattr(tokenizer, 'name_or_path', '')!r} has no chat template; use an instruct/chat model")
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def render_completion(tokenizer: Any, text: str) -> str:
    """The training target after ``render_prompt``: the answer and the token that ends the turn.

    The model learns to emit ``tokenizer.eos_token`` after the answer, and inference
    stops there. (For ChatML models it is ``<|im_end|>``; the template's trailing
    newline after it is never generated, so it is not part of the target.)
    """
    return text + tokenizer.eos_token


def encode(tokenizer: Any, text: str) -> list[int]:
    """Token ids of rendered text. ``add_special_tokens=False``: the chat template already
    wrote any BOS it wants, and adding another would shift every position."""
    return tokenizer(text, add_special_tokens=False)["input_ids"]
