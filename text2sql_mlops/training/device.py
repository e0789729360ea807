"""Precision and memory choices per device: what TRL's defaults get wrong.

TRL turns bf16 and gradient checkpointing on by default. bf16 is right on a GPU that
has it (half the memory, tensor cores) and wrong on a CPU, where bf16 matmuls run far
slower than fp32. Gradient checkpointing recomputes every layer's forward pass in
backward to keep fewer activations: it pays only when the activations do not fit. On a
CPU it made one SmolLM2-135M step take 183 s instead of 10.8 s; on a GPU it adds one
forward pass per step (about a third more compute). So ``None`` (the default of both
flags) means: bf16 on a GPU that supports it, fp32 elsewhere; checkpointing off on every
device. ``--gradient_checkpointing`` is for a step that runs out of GPU memory (long
prompts times a big ``--per_device_train_batch_size``); a smaller batch with more
``--gradient_accumulation_steps`` is the other way out.

``score_answer_tokens_only`` removes a CPU-only waste in TRL's loss (see there); with
it a TRL step on CPU costs no more than a hand-written LoRA step
(``bench/bench_training.py``). ``keep_freed_memory`` removes another, in the C allocator.
"""

from __future__ import annotations

import ctypes
import os
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Runtime:
    device: str  # "cuda" or "cpu"
    dtype: str  # what the base weights are loaded in: "bfloat16" or "float32"
    bf16: bool  # mixed precision (autocast) in the Trainer
    gradient_checkpointing: bool


def resolve_runtime(bf16: bool | None, gradient_checkpointing: bool | None) -> Runtime:
    """The flags' ``None`` (not given) resolved for this machine's device; a given flag stays as given."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    on_gpu = device == "cuda"
    if bf16 is None:
        bf16 = on_gpu and torch.cuda.is_bf16_supported()
        if on_gpu and not bf16:
            # fp16 would need loss scaling and can overflow; fp32 is slower but always right.
            print("train: note: this GPU has no bf16; training in fp32", file=sys.stderr)
    gradient_checkpointing = bool(gradient_checkpointing)
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

    On CUDA the answer stays TRL's own, so its fused log-prob path runs unchanged there.
    TRL 1.16's DPOTrainer always calls the model with ``fused_lm_head=True`` (no DPOConfig
    field turns it off; Liger's fused cross-entropy, which would replace it, is refused and
    never enabled here), its SFTTrainer too unless given a custom loss or label smoothing
    (we give neither), and ``trl/kernels/chunked_logprob.py`` folds the vocabulary tiles
    with its Triton kernels wherever triton is installed (the CUDA torch wheels bring it).
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


# glibc's mallopt parameters (malloc.h) and the largest value it takes (an int).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MALLOC_TUNABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


def keep_freed_memory() -> bool:
    """Make glibc keep the memory a training step frees for the next step; whether it did.

    glibc serves a large allocation (above 128 KiB, a threshold it raises up to 32 MiB) from
    fresh pages of its own mmap and unmaps them when freed. A training step frees and
    allocates the same tensors again (gradients, among them the 113 MB of SmolLM2's tied
    embedding, activations, optimizer temporaries), so every step the kernel maps and zeroes
    them anew. With both thresholds at their maximum (2 GiB) freed memory stays in the heap
    and is reused: 8 demo SFT steps on 2 cores ran 1.12x faster (medians of runs taking turns
    with the defaults), the same loss to the bit and the same peak memory
    (``bench/bench_freed_memory.py``, README "Training on a CPU"). Generation gained nothing
    measurable, so only training calls it. Elsewhere than glibc (macOS, musl) and when the
    user tunes malloc through the environment, it does nothing.
    """
    if any(name in os.environ for name in MALLOC_TUNABLES):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    most = 2**31 - 1
    return bool(mallopt(M_MMAP_THRESHOLD, most)) and bool(mallopt(M_TRIM_THRESHOLD, most))
