"""Generators behind one contract, chosen by name.

A generator takes a batch of chat prompts and returns ``num_samples``
completions per prompt. Backends are registered by name and imported only when
used, so choosing ``mock`` never imports torch. Each declares its options as a
dataclass, which callers read through ``backend_options`` instead of naming backends.
"""

from .backends import (
           backend_options,
           backends_with,
           batches_internally,
           create_generator,
           describe_options,
           generator_names,
           parse_option,
)
from .base import Completion, GenerationRequest, Generator, SamplingParams

__all__ = ["Completion", "GenerationRequest", "Generator", "SamplingParams", "backend_options", "backends_with",
           "batches_internally", "create_generator", "describe_options", "generator_names", "parse_option"]
