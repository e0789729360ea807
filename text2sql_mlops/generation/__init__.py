"""Generators behind one contract, chosen by name.

A generator takes a batch of chat prompts and returns ``num_samples``
completions per prompt. Backends are registered by name and imported only when
used, so choosing ``mock`` never imports torch.
"""

from .base import Completion, GenerationRequest, Generator, SamplingParams, create_generator, generator_names

__all__ = ["Completion", "GenerationRequest", "Generator", "SamplingParams", "create_generator", "generator_names"]
