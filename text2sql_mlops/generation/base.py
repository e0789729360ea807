"""The generator contract and the name registry.

Contract (the only thing the rollout loop knows about a model):

    generate(requests, params) -> completions
      requests:    list of GenerationRequest (chat messages + metadata)
      completions: one list per request, each of exactly params.num_samples Completion

Metadata is for bookkeeping and for the ``mock`` backend; real backends see
only the messages, so no gold information can reach a real model through it.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from ..errors import UserError

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class SamplingParams:
    num_samples: int = 1
    temperature: float = 0.0  # 0 means greedy
    top_p: float = 1.0
    max_new_tokens: int = 256
    seed: int = 0

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


@dataclass
class GenerationRequest:
    messages: Messages
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Completion:
    text: str
    num_tokens: int = 0


class Generator(ABC):
    """A model that completes chat prompts. Subclasses batch however suits them."""

    name: str = "base"

    @abstractmethod
    def generate(self, requests: list[GenerationRequest], params: SamplingParams) -> list[list[Completion]]:
        ...

    def close(self) -> None:
        """Release model memory, servers or threads."""


# name -> "module:Class", imported lazily so that `mock` never pulls in torch.
_BACKENDS = {
    "mock": "text2sql_mlops.generation.mock:MockGenerator",
    "hf": "text2sql_mlops.generation.hf:HFGenerator",
    "openai": "text2sql_mlops.generation.openai_compat:OpenAIGenerator",
    "vllm": "text2sql_mlops.generation.vllm_backend:VLLMGenerator",
}


def generator_names() -> list[str]:
    return sorted(_BACKENDS)


def create_generator(name: str, **options: Any) -> Generator:
    if name not in _BACKENDS:
        raise UserError(f"unknown generator {name!r}; choose one of: {', '.join(generator_names())}")
    module_name, class_name = _BACKENDS[name].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(**options)
