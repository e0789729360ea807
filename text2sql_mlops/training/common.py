"""What ``train sft`` and ``train dpo`` share: checks, model loading, TRL arguments, the output folder.

The output folder is staged next to ``--out`` and renamed into place when training
and saving succeeded (``fileio.atomic_path``), so an interrupted run leaves no
half-written adapter. Under ``accelerate launch`` (or ``torchrun``) every process
trains its share of each batch, and only the main process (global rank 0) stages and
writes the folder and prints.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata as metadata
import json
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from ..core.errors import UserError
from ..core.fileio import atomic_folder, check_not_an_input, check_output_folder, output_lock, write_json, write_jsonl
from ..data.guard import load_eval_split
from ..generation.adapters import (
    ADAPTER_WEIGHTS,
    check_adapter_folder,
    check_model_folder,
    is_whole_model_folder,
    loading,
)
from .config import METRICS, SUMMARY, TrainSettings, trained_here
from .device import Runtime, keep_freed_memory


def check_settings(settings: TrainSettings) -> None:
    """Fail early, with one line, on what would otherwise fail after minutes of loading."""
    check_model_folder(settings.model)
    for name in ("per_device_train_batch_size", "gradient_accumulation_steps", "max_length", "logging_steps", "lora_r"):
        if getattr(settings, name) < 1:
            raise UserError(f"--{name} must be at least 1, got {getattr(settings, name)}")
    if settings.max_steps == 0 or settings.max_steps < -1:
        raise UserError(f"--max_steps must be positive, or -1 to run --num_train_epochs; got {settings.max_steps}")
    if settings.max_steps == -1 and settings.num_train_epochs <= 0:
        raise UserError(f"--num_train_epochs must be positive, got {settings.num_train_epochs}")
    if settings.learning_rate <= 0:
        raise UserError(f"--learning_rate must be positive, got {settings.learning_rate}")
    if settings.last_layers < 0:
        raise UserError(f"--last_layers must be 0 (all layers) or more, got {settings.last_layers}")

    check_output_folder(settings.out, trained_here)
    # Continuing a run into its own folder would replace the weights it starts from.
    inputs = [settings.model, getattr(settings, "init_adapter", None), getattr(settings, "dataset", None), settings.eval_dataset,
              *getattr(settings, "pairs", []), *getattr(settings, "trajectories", [])]
    check_not_an_input(settings.out, inputs, "--out")


def eval_split(settings: TrainSettings):
    """The clean-split guard's evaluation keys, or None without --eval_dataset."""
    return load_eval_split(settings.eval_dataset, settings.eval_db_root, settings.eval_split,
                           settings.eval_same_db_split) if settings.eval_dataset else None


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_main_process() -> bool:
    """Whether this is the process that writes (global rank 0). Launchers (``accelerate launch``,
    ``torchrun``) set RANK for each process; read before the Trainer sets up distribution."""
    return int(os.environ.get("RANK", "0")) == 0


def quiet_libraries() -> None:
    """Our log lines instead of the libraries' progress bars (loading, dataset maps)."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()


def load_tokenizer(model: str):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
    except Exception as exc:  # transformers raises OSError, ValueError, TypeError... for a folder without one
        reason = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise UserError(f"{model}: cannot load the model's tokenizer ({reason[:300]}); the model folder needs its tokenizer "
                        "files (tokenizer.json and tokenizer_config.json, or the slow tokenizer's); copy them from the base "
                        "model or run `text2sql-mlops model prepare`") from None
    if tokenizer.eos_token is None:
        raise UserError(f"tokenizer of {model} has no EOS token: the model could not learn where an answer ends")
    return tokenizer


def load_model(model: str, runtime: Runtime):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    with loading("the model's config", model):
        config = AutoConfig.from_pretrained(model)
    quantization = getattr(config, "quantization_config", None)
    method = quantization.get("quant_method") if isinstance(quantization, dict) else getattr(quantization, "quant_method", None)
    if str(method).lower().endswith("gguf"):
        # A folder converted from GGUF (`model prepare`) holds dequantized safetensors, but its
        # config.json may still name the GGUF source, and the Trainer refuses "quantized" models.
        delattr(config, "quantization_config")
    with loading("the model", model):
        return AutoModelForCausalLM.from_pretrained(model, config=config, dtype=getattr(torch, runtime.dtype))


def lora_config(settings: TrainSettings, model=None):
    """The LoRA of ``settings``; ``model`` (the loaded base) tells how many layers there are
    when only the last ``--last_layers`` get adapters."""
    from peft import LoraConfig

    given = settings.lora_target_modules
    targets = given if given == "all-linear" else [name.strip() for name in given.split(",") if name.strip()]
    layers = None
    if settings.last_layers:
        # Nothing below the lowest adapted layer needs a gradient, so backward stops there.
        layers = last_layer_numbers(model, settings.last_layers)
        if targets == "all-linear":  # PEFT takes a layer subset only with module names
            targets = linear_module_names(model)
    return LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
                      target_modules=targets, layers_to_transform=layers, task_type="CAUSAL_LM")


def trainable_model(settings: TrainSettings, runtime: Runtime, start: str | None = None):
    """(model, LoRA config) for a trainer: the model at ``start`` (default: the base) with only
    what ``settings`` trains left trainable. With ``--full_finetune`` its own weights train (the
    last ``--last_layers`` of them when given) and there is no LoRA config; else a fresh LoRA."""
    model = load_model(start or settings.model, runtime)
    if not settings.full_finetune:
        return model, lora_config(settings, model)
    if settings.last_layers:
        freeze_all_but_last_layers(model, settings.last_layers)
    return model, None


def init_adapter_file(settings: TrainSettings) -> str | None:
    """The weights file of --init_adapter (hashed into the run's inputs), after checking that the
    folder is what --full_finetune continues: a whole model with it, a LoRA adapter without."""
    if not settings.init_adapter:
        return None
    adapter = Path(settings.init_adapter)
    if is_whole_model_folder(adapter):
        if not settings.full_finetune:
            raise UserError(f"--init_adapter: {adapter} is a fully fine-tuned model; continue it with --full_finetune "
                            "(a LoRA on top of it would need it as the base model wherever the adapter is used)")
        return str(next(adapter.glob("*.safetensors"), adapter / "config.json"))
    if settings.full_finetune:
        raise UserError(f"--init_adapter: {adapter} is not a whole model folder; --full_finetune continues the output "
                        "of `train sft --full_finetune` (or drop --full_finetune to continue a LoRA adapter)")
    check_adapter_folder(adapter, f"--init_adapter {adapter}", hint="give the --out folder of `train sft`")
    return next(str(adapter / name) for name in ADAPTER_WEIGHTS if (adapter / name).is_file())


def starting_model(settings: TrainSettings, runtime: Runtime):
    """(model, LoRA config) where training starts: --init_adapter's LoRA loaded trainable (no new
    LoRA config), else ``trainable_model`` from the base or from --init_adapter's whole model."""
    if settings.init_adapter and not settings.full_finetune:
        from peft import PeftModel

        base = load_model(settings.model, runtime)
        with loading("the LoRA adapter", settings.init_adapter, base=settings.model):
            model = PeftModel.from_pretrained(base, settings.init_adapter, is_trainable=True)
        _settle_lora_settings(settings, model.peft_config["default"])
        return model, None
    return trainable_model(settings, runtime, settings.init_adapter)


def _settle_lora_settings(settings: TrainSettings, adapter) -> None:
    """The LoRA settings are the continued adapter's: training_summary's settings (and so the
    run's params) said lora_r 8 while the adapter trained was the SFT one's r 16. Flags given
    otherwise are named once, as ignored."""
    targets = adapter.target_modules
    actual = {"lora_r": adapter.r, "lora_alpha": adapter.lora_alpha, "lora_dropout": adapter.lora_dropout,
              "lora_target_modules": ",".join(sorted(targets)) if isinstance(targets, (set, list)) else str(targets)}
    defaults = {field.name: field.default for field in fields(settings)}

    def given(name: str):
        value = getattr(settings, name)  # a module list in any order is the same list
        return ",".join(sorted(value.split(","))) if name == "lora_target_modules" and value != "all-linear" else value

    ignored = [f"--{name} {getattr(settings, name)}" for name, value in actual.items()
               if getattr(settings, name) != defaults[name] and given(name) != value]
    if ignored:
        print(f"train: note: --init_adapter continues its own LoRA (r {adapter.r}, alpha {adapter.lora_alpha}); "
              f"ignored: {', '.join(ignored)}", file=sys.stderr)
    for name, value in actual.items():
        setattr(settings, name, value)


def last_layer_numbers(model, count: int) -> list[int]:
    """The indexes of the last ``count`` transformer layers of ``model``."""
    total = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    if not total:
        raise UserError("--last_layers needs a model whose config says num_hidden_layers")
    return list(range(max(0, total - count), total))


def freeze_all_but_last_layers(model, count: int) -> None:
    """Full fine-tuning of the last ``count`` layers (and the final norm): everything below stays
    frozen, so backward stops there. The embeddings stay frozen too: SmolLM2 ties them to the
    output head, and a trainable input embedding would send backward through every layer."""
    trained = {str(n) for n in last_layer_numbers(model, count)}
    for name, parameter in model.named_parameters():
        layer = re.search(r"\.layers\.(\d+)\.", name)
        parameter.requires_grad = (layer.group(1) in trained) if layer else name.endswith("norm.weight")


def linear_module_names(model) -> list[str]:
    """The names (last part) of the linear modules inside the model's transformer layers:
    what PEFT's "all-linear" means, spelled out (the output head is not one of them)."""
    import torch

    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    return sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                   if isinstance(module, torch.nn.Linear) and module is not output and ".layers." in f".{name}"})


def trainer_arguments(settings: TrainSettings, runtime: Runtime, output_dir: str) -> dict[str, Any]:
    """The ``TrainingArguments`` both methods pass: ours, plus everything that wastes time off."""
    from transformers import TrainingArguments

    # transformers 5.2x renamed gradient_checkpointing (TRL still reads the old name, kept as a mirror).
    checkpointing = "activation_checkpointing" if "activation_checkpointing" in {f.name for f in fields(TrainingArguments)} else "gradient_checkpointing"
    return dict(
        output_dir=output_dir,
        learning_rate=settings.learning_rate,
        lr_scheduler_type=settings.lr_scheduler_type,
        warmup_steps=settings.warmup_steps,
        num_train_epochs=settings.num_train_epochs,
        max_steps=settings.max_steps,
        per_device_train_batch_size=settings.per_device_train_batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        seed=settings.seed,
        logging_steps=settings.logging_steps,
        # A NaN/inf step loss is logged as it is (the default swaps in the running mean, which
        # hid a diverged run): MetricsLog stops the training at the first one.
        logging_nan_inf_filter=False,
        bf16=runtime.bf16,
        **{checkpointing: runtime.gradient_checkpointing},
        # No evaluation, checkpoints, trackers, worker processes or progress bar: the
        # adapter is saved once at the end, metrics go to metrics.jsonl.
        eval_strategy="no",
        save_strategy="no",
        report_to="none",
        dataloader_num_workers=0,
        dataloader_pin_memory=runtime.device == "cuda",
        disable_tqdm=True,
        use_cpu=runtime.device == "cpu",  # also makes `torchrun` on CPU data-parallel (gloo)
        # Every LoRA weight is used in every forward pass: DDP need not search for unused ones.
        ddp_find_unused_parameters=False,
    )


def announce(method: str, settings: TrainSettings, runtime: Runtime, data: dict[str, int]) -> None:
    if is_main_process():
        for name, values in (("settings", asdict(settings)), ("runtime", asdict(runtime)), ("data", data)):
            print(f"train {method}: {name} {json.dumps(values)}", file=sys.stderr, flush=True)


def versions() -> dict[str, str]:
    return {name: metadata.version(name) for name in ("trl", "peft", "transformers", "torch", "accelerate", "datasets")}


def train_and_save(method: str, settings: TrainSettings, runtime: Runtime, build_trainer: Callable[[str, list], Any],
                   inputs: dict[str, str], data: dict[str, int], started: float) -> dict[str, Any]:
    """Train the trainer ``build_trainer(output_dir, callbacks)`` returns; on the main process,
    write the adapter, tokenizer, metrics.jsonl and training_summary.json atomically to --out."""
    from transformers import PrinterCallback

    from .metrics import MetricsLog

    keep_freed_memory()  # faster steps on CPU (1.12x on the demo), the same numbers (device.py)
    main = is_main_process()
    out = Path(settings.out)
    with (output_lock(out, "training") if main else contextlib.nullcontext()),\
         (atomic_folder(out, trained_here) if main else contextlib.nullcontext(None)) as staged:
        log = MetricsLog(method)
        trainer = build_trainer(str(staged or out), [log])  # Trainer only creates output_dir on the main process
        trainer.remove_callback(PrinterCallback)  # the raw dict of every log; MetricsLog prints a line instead
        result = trainer.train()
        model = trainer.accelerator.unwrap_model(trainer.model)
        adapter = model.peft_config["default"] if hasattr(model, "peft_config") else None  # None: fully fine-tuned
        summary = training_summary(method, settings, runtime, trainer, result, log.rows, adapter, inputs, data)
        if main:
            # Only the trained adapter: DPO keeps a frozen copy of an initial adapter under "ref".
            if adapter is None:
                model.save_pretrained(staged)  # the whole model: a model folder like the base
            else:
                model.save_pretrained(staged, selected_adapters=["default"])
            trainer.processing_class.save_pretrained(staged)
            write_jsonl(staged / METRICS, log.rows)
            summary["wall_s"] = round(time.perf_counter() - started, 3)
            write_json(staged / SUMMARY, summary)
    return summary


def training_summary(method: str, settings: TrainSettings, runtime: Runtime, trainer, result, rows: list[dict], adapter,
                     inputs: dict[str, str], data: dict[str, int]) -> dict[str, Any]:
    """training_summary.json: what was asked, what ran, on what data, with what result."""
    world = trainer.args.world_size
    targets = adapter.target_modules if adapter is not None else None
    return {
        "method": method,
        "out": settings.out,
        "settings": asdict(settings),
        "runtime": {**asdict(runtime), "world_size": world,
                    "effective_batch_size": world * settings.per_device_train_batch_size * settings.gradient_accumulation_steps},
        "lora": None if adapter is None else {"r": adapter.r, "lora_alpha": adapter.lora_alpha, "lora_dropout": adapter.lora_dropout,
                                              "target_modules": sorted(targets) if isinstance(targets, (set, list)) else targets},
        "inputs_sha256": inputs,
        "data": data,
        "result": {
            "steps": result.global_step,
            "epochs": round(trainer.state.epoch or 0.0, 4),
            "train_loss": result.training_loss,  # mean over the run
            "final": rows[-1] if rows else {},  # the last logged step: loss, (DPO) rewards
            "train_runtime_s": result.metrics.get("train_runtime"),
            "steps_per_s": result.metrics.get("train_steps_per_second"),
            "samples_per_s": result.metrics.get("train_samples_per_second"),
        },
        "versions": versions(),
    }


def report(summary: dict[str, Any]) -> None:
    """One JSON line on stdout, as every stage prints."""
    if is_main_process():
        result = summary["result"]
        print(json.dumps({"out": summary["out"], "examples": summary["data"]["examples"], "steps": result["steps"],
                          "train_loss": result["train_loss"], "final": result["final"], "wall_s": summary.get("wall_s")}))
