"""``vllm``: in-process vLLM on a CUDA GPU (install the ``gpu`` extra).

vLLM schedules all prompts and samples itself (continuous batching), so this
backend only translates: prompts are rendered and tokenized with the template
shared with training (``chat.py``) and passed as token ids, so vLLM adds no BOS of
its own; a LoRA adapter is served without merging, through ``LoRARequest``.

vLLM does not run on CPU machines, so the three vLLM entry points are injectable
(``VLLMGenerator(options, api=VllmApi(...))``, or ``load_vllm_api`` replaced) and the
tests run this code against fakes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..core.errors import UserError
from .adapters import check_model_folder
from .base import Completion, GenerationRequest, Generator, SamplingParams, option
from .chat import encode, render_prompt

# vLLM accepts only these values for max_lora_rank; the adapter's rank is rounded up to one.
VLLM_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


@dataclass(frozen=True)
class VllmApi:
    """The parts of vLLM this backend calls: ``vllm.LLM``, ``vllm.SamplingParams``, ``LoRARequest``."""

    LLM: Callable[..., Any]
    SamplingParams: Callable[..., Any]
    LoRARequest: Callable[..., Any]


def load_vllm_api() -> VllmApi:
    try:
        from vllm import LLM, SamplingParams
        from vllm.lora.request import LoRARequest
    except ImportError as error:
        raise UserError(f"vllm generator needs vLLM on a CUDA machine: make setup-gpu (pip install -c constraints-gpu.txt -e '.[gpu]') ({error})") from None
    return VllmApi(LLM, SamplingParams, LoRARequest)


@dataclass(frozen=True)
class VLLMOptions:
    BATCHES_INTERNALLY: ClassVar[bool] = True  # continuous batching over every prompt it is given

    model_path: str | None = option(None, "a Hugging Face model folder")
    adapter_path: str | None = option(None, "a LoRA adapter folder, served unmerged")
    dtype: str = option("auto", "auto (bfloat16), bfloat16, float16 or float32")
    gpu_memory_utilization: float = option(0.9, "share of the GPU's memory vLLM may take")
    max_model_len: int | None = option(None, "longest prompt + answer in tokens (default: the model's)")
    progress: bool = option(True, "vLLM's progress bar on stderr")


class VLLMGenerator(Generator):
    """A vLLM engine over ``model_path``, optionally serving the LoRA adapter at ``adapter_path``."""

    name = "vllm"
    frees_cpu = True

    def __init__(self, options: VLLMOptions, api: VllmApi | None = None) -> None:
        model_path, adapter_path, dtype = options.model_path, options.adapter_path, options.dtype
        if not model_path:
            raise UserError("vllm generator needs model_path (a Hugging Face model folder, e.g. models/smollm2-135m-instruct)")
        model_dir = check_model_folder(model_path)
        self.api = api or load_vllm_api()
        self.progress = options.progress
        # "auto" means bf16, as in the hf backend on a GPU (vLLM's own "auto" would pick fp16
        # for the fp32 folders that `model prepare` writes).
        engine_options: dict[str, Any] = {
            "model": str(model_dir),
            "dtype": "bfloat16" if dtype == "auto" else dtype,
            "gpu_memory_utilization": options.gpu_memory_utilization,
        }
        if options.max_model_len:
            engine_options["max_model_len"] = options.max_model_len
        self.lora = None
        if adapter_path:
            adapter_dir = Path(adapter_path)
            config_file = adapter_dir / "adapter_config.json"
            if not config_file.is_file():
                raise UserError(f"LoRA adapter not found: {adapter_dir} has no adapter_config.json")
            rank = json.loads(config_file.read_text())["r"]
            engine_options["enable_lora"] = True
            engine_options["max_lora_rank"] = next((r for r in VLLM_LORA_RANKS if r >= rank), rank)
            self.lora = self.api.LoRARequest("adapter", 1, str(adapter_dir))
        self.engine = self.api.LLM(**engine_options)
        self.tokenizer = self.engine.get_tokenizer()

    def generate(self, requests: list[GenerationRequest], params: SamplingParams) -> list[list[Completion]]:
        prompts = [{"prompt_token_ids": encode(self.tokenizer, render_prompt(self.tokenizer, r.messages))} for r in requests]
        # Greedy samples are all the same answer: generate one, copy it below.
        n = 1 if params.greedy else params.num_samples
        sampling = self.api.SamplingParams(
            n=n,
            temperature=max(params.temperature, 0.0),
            top_p=params.top_p,
            max_tokens=params.max_new_tokens,
            seed=params.seed,
        )
        outputs = self.engine.generate(prompts, sampling, lora_request=self.lora, use_tqdm=self.progress)
        results = []
        for output in outputs:  # vLLM returns them in prompt order
            samples = [Completion(text=sample.text, num_tokens=len(sample.token_ids)) for sample in output.outputs]
            if params.greedy:
                samples = [Completion(samples[0].text, samples[0].num_tokens) for _ in range(params.num_samples)]
            results.append(samples)
        return results

    def close(self) -> None:
        # vLLM releases the GPU memory when the engine is garbage-collected.
        self.engine = None
