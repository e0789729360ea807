"""Precision and memory choices per device: what TRL's defaults get wrong on a CPU.

TRL turns bf16 and gradient checkpointing on by default. On a GPU both are right
(half the memory and tensor cores; activations recomputed instead of kept). On a
CPU both are wrong: bf16 matmuls run far slower than fp32 and checkpointing redoes
the forward pass, so one SmolLM2-135M step took 183 s instead of 10.8 s. ``None``
(the default of both flags) therefore means: on a GPU, off on CPU.

``score_answer_tokens_only`` removes a CPU-only waste in TRL's loss (see there); with
it a TRL step on CPU costs no more than a hand-written LoRA step
(``bench/bench_training.py``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Runtime:
    device: str  # "cuda" or "cpu"
    dtype: str  # what the base weights are loaded in: "bfloat16" or "float32"
    bf16: bool  # mixed precision (autocast) in the Trainer
    gradient_checkpointing: bool


def resolve_runtime(bf16: bool | None, gradient_checkpointing: bool | None) -> Runtime:
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    on_gpu = device == "cuda"
    bf16 = on_gpu if bf16 is None else bf16
    gradient_checkpointing = on_gpu if gradient_checkpointing is None else gradient_checkpointing
    # bf16 weights only on a GPU: on CPU the weights stay fp32 even under bf16 autocast.
    dtype = "bfloat16" if bf16 and on_gpu else "float32"
    return Runtime(device, dtype, bf16, gradient_checkpointing)


def score_answer_tokens_only() -> None:
    """Make TRL's fused LM head score only the answer positions on CPU, as it does on GPUs.

    TRL 1.16 computes the per-token log-probs in vocabulary tiles without the full logits
    (``add_fused_lm_head``). With Triton (CUDA/XPU) it projects only the positions whose
    label counts; elsewhere it projects every position, because on Neuron a changing count
    would recompile the graph. A CPU compiles nothing, and on Spider the prompt (schema)
    is most of the tokens: projecting them all onto SmolLM2's 49k vocabulary, forward
    and again in backward, is wasted. The losses and metrics are the same either way.
    """
    import trl.trainer.utils as trl_utils

    decide = getattr(trl_utils, "_use_triton", None)  # the name TRL 1.16 decides it by
    if decide is None:
        print("train: note: this TRL version has no trl.trainer.utils._use_triton; CPU training scores every "
              "token (same losses, slower). Pinned: trl==1.16.0", file=sys.stderr)
        return
    if not getattr(decide, "cpu_compact", False):
        def compact(device) -> bool:
            return device.type == "cpu" or decide(device)

        compact.cpu_compact = True
        trl_utils._use_triton = compact
