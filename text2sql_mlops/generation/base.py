"""The generator contract.

Contract (the only thing the rollout loop knows about a model):

    generate(requests, params) -> completions
      requests:    list of GenerationRequest (chat messages + metadata)
      completions: one list per request, each of exactly params.num_samples Completion

Metadata is for bookkeeping and for the ``mock`` backend; real backends see
only the messages, so no gold information can reach a real model through it.

Each backend declares its options as a dataclass (name, type, default, help: see
``option``) in a module that imports no torch, and its generator takes an instance.
Backends are chosen by name in ``backends.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

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
    # Whether generate() leaves the CPU free while it runs (a GPU or a server does the work). The
    # rollout then runs the candidates' SQL in threads meanwhile; next to a model on the CPU those
    # threads would only take cores and the GIL from it.
    frees_cpu: bool = False

    @abstractmethod
    def generate(self, requests: list[GenerationRequest], params: SamplingParams) -> list[list[Completion]]:
        ...

    def close(self) -> None:
        """Release model memory, servers or threads."""


def option(default: Any, help: str) -> Any:
    """A field of a backend's options dataclass: its default and one line of help."""
    return field(default=default, metadata={"help": help})
