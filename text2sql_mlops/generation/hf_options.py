"""The ``hf`` backend's options, apart from ``hf.py`` so that reading them imports no torch."""

from __future__ import annotations

from dataclasses import dataclass

from .base import option


@dataclass(frozen=True)
class HFOptions:
    model_path: str | None = option(None, "a Hugging Face model folder (config.json, weights, tokenizer)")
    adapter_path: str | None = option(None, "a LoRA adapter folder, merged into the model when loaded")
    batch_size: int = option(16, "prompts per forward pass")
    dtype: str = option("auto", "auto (bf16 on a GPU, fp32 on CPU), float32, bfloat16 or float16")
    device: str = option("auto", "auto (cuda when there is one), cpu, cuda, cuda:1, ...")
    device_map: str | None = option(None, "transformers device_map, e.g. auto (spreads a big model over the GPUs)")
    decoder: str = option("loop", "loop (ours: stopped rows leave the batch, shared prefixes read once) or generate "
                                  "(transformers' generate; a static cache on a GPU); the same greedy tokens")
    turn_cache_mb: int = option(2048, "memory for the attention caches of finished answers, so that a repair turn "
                                      "reads only its new tokens (0: off; loop decoder only)")
    progress: bool = option(True, "a progress bar per generate call on stderr")
