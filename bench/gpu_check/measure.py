"""The GPU check's measurements, on a randomly initialised Qwen2.5-Coder-3B (no weights needed).

    python bench/gpu_check/measure.py --kit bench/gpu_check/kit --out gpu_check_out [--smoke]

Run by ``bench/gpu_check.sh`` (which installs the kit's wheels first and documents the
sizes and choices). In order, each in its own section, so that one failing section is
recorded in the results and the others still run:

1. a random-weight model folder from the committed config (bf16 on a GPU) with the kit's
   SmolLM2 tokenizer; the model's ids past the tokenizer's 49,152 decode to nothing;
2. the ``hf`` backend's generated tokens per second at each batch size, greedy, on the
   kit's Spider prompts (random weights rarely stop early: nearly every row runs to
   ``max_new_tokens``, the costliest case);
3. a 3-turn rollout through the real ``rollout`` path (hf generator, SQLite execution,
   Column-Minimal feedback, repair prompts) on the kit's 64 questions;
4. one LoRA SFT and one LoRA DPO step through our TRL trainers (the spider profile's
   batch sizes and max_length), timed per optimizer step, with peak GPU memory;
5. with the time left, the hf backend's other decoder, transformers' ``generate`` (a static
   cache, which transformers compiles on a GPU), at the batch sizes of 2, each run twice: the
   first call pays the compilation, a rollout's later calls do not. Set against section 2's
   rows, it picks the decoder for GPUs (issue 15, item 4).

Writes ``gpu_check.json`` and ``gpu_check.md`` to ``--out`` and prints the Markdown.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

CONFIG = HERE / "qwen2.5-coder-3b-instruct.config.json"
# Seconds a section needs at least, on an H200, by estimate (no GPU run yet): one that would
# start with less of the budget left is skipped, so that the run ends inside its limit.
RESERVE_S = {"model": 0, "generation": 0, "rollout": 120, "sft": 45, "dpo": 45, "decoders": 30}
# profiles/spider.yaml: generation.batch_size 64, sft batch 8, dpo batch 4, max_length 2048.


@dataclass(frozen=True)
class Plan:
    name: str
    model_overrides: dict = field(default_factory=dict)  # changes to the committed config (smoke: a tiny model)
    batch_prompts: dict = field(default_factory=dict)  # batch size -> prompts generated at that size
    decoder_prompts: dict = field(default_factory=dict)  # the same for section 5 (decoder=generate)
    max_new_tokens: int = 128
    rollout_examples: int = 64
    rollout_batch: int = 64
    rollout_turns: int = 3
    sft_batch: int = 8
    dpo_batch: int = 4
    max_length: int = 2048
    train_steps: int = 2  # the first includes warm-up (kernel choice, allocator growth)


FULL = Plan(name="full", batch_prompts={1: 4, 16: 32, 64: 128, 256: 1034}, decoder_prompts={16: 32, 64: 128, 256: 1034})
SMOKE = Plan(name="smoke", model_overrides={"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                                            "num_key_value_heads": 2, "intermediate_size": 128},
             batch_prompts={1: 2, 2: 4}, decoder_prompts={2: 4}, max_new_tokens=4, rollout_examples=4, rollout_batch=2, sft_batch=2, dpo_batch=2)


class Clock:
    def __init__(self, budget_s: float):
        self.started, self.budget_s = time.perf_counter(), budget_s

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def left(self) -> float:
        return self.budget_s - self.elapsed()

    def say(self, message: str) -> None:
        print(f"[gpu_check {self.elapsed():6.1f} s] {message}", file=sys.stderr, flush=True)


def synchronize() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def reset_peak() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def peak_gib() -> float | None:
    """Peak GPU memory allocated by torch since ``reset_peak`` (None on CPU)."""
    import torch

    return round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None


def release() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def environment() -> dict:
    import importlib.metadata as metadata

    import torch

    packages = {}
    for name in ("torch", "transformers", "trl", "datasets", "peft", "accelerate", "tokenizers", "huggingface-hub", "pyarrow",
                 "pandas", "sqlglot"):
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    cuda = torch.cuda.is_available()
    return {"python": platform.python_version(), "packages": packages, "cuda": cuda,
            "device": torch.cuda.get_device_name(0) if cuda else platform.processor() or "cpu",
            "gpu_memory_gib": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1) if cuda else None,
            "torch_threads": torch.get_num_threads()}


def build_model(plan: Plan, kit: Path, work: Path) -> dict:
    """A model folder: the committed config, random weights (seed 0), the kit's tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    tokenizer = AutoTokenizer.from_pretrained(kit / "tokenizer")
    settings = {**json.loads(CONFIG.read_text()), **plan.model_overrides}
    # The tokenizer's special ids, so that generation stops and training ends answers where the tokenizer says.
    ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id}
    config = AutoConfig.for_model(**{**settings, **ids})
    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda else torch.float32
    torch.manual_seed(0)
    with torch.device("cuda" if cuda else "cpu"):  # initialised where it runs: seconds, not minutes on CPU
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.generation_config = GenerationConfig(**ids)
    folder = work / "model"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    parameters = sum(p.numel() for p in model.parameters())
    del model
    release()
    return {"folder": str(folder), "parameters": parameters, "dtype": str(dtype).removeprefix("torch."),
            "layers": config.num_hidden_layers, "hidden_size": config.hidden_size, "vocab_size": config.vocab_size,
            "tokenizer_size": len(tokenizer), "bytes_on_disk": sum(f.stat().st_size for f in folder.iterdir())}


def generation_speed(plan: Plan, model_dir: str, prompts: list[dict], clock: Clock) -> dict:
    """Generated tokens per second of the hf backend at each batch size (one loaded model)."""
    from text2sql_mlops.generation import GenerationRequest, SamplingParams, create_generator
    from text2sql_mlops.generation.chat import encode, render_prompt

    started = time.perf_counter()
    generator = create_generator("hf", model_path=model_dir, batch_size=1, progress=False)
    load_s = time.perf_counter() - started
    requests = [GenerationRequest(messages=p["messages"]) for p in prompts]
    lengths = [len(encode(generator.tokenizer, render_prompt(generator.tokenizer, r.messages))) for r in requests]
    generator.generate(requests[:2], SamplingParams(max_new_tokens=4))  # warm-up: CUDA context, kernels
    params = SamplingParams(max_new_tokens=plan.max_new_tokens)
    runs = []
    for batch_size, count in plan.batch_prompts.items():
        if clock.left() < RESERVE_S["rollout"] + RESERVE_S["sft"] + RESERVE_S["dpo"]:
            runs.append({"batch_size": batch_size, "skipped": f"time budget ({clock.left():.0f} s left, kept for the later sections)"})
            continue
        generator.batch_size = batch_size  # the option the backend was built with; one model load for all sizes
        chosen = requests[:count]
        reset_peak()
        synchronize()
        began = time.perf_counter()
        results = generator.generate(chosen, params)
        synchronize()
        seconds = time.perf_counter() - began
        tokens = sum(samples[0].num_tokens for samples in results)
        runs.append({"batch_size": batch_size, "prompts": len(chosen), "prompt_tokens_mean": round(sum(lengths[:count]) / len(chosen), 1),
                     "generated_tokens": tokens, "rows_stopped_early": sum(s[0].num_tokens < plan.max_new_tokens for s in results),
                     "seconds": round(seconds, 3), "tokens_per_s": round(tokens / seconds, 1), "peak_gpu_gib": peak_gib()})
        clock.say(f"generation batch {batch_size}: {runs[-1]['tokens_per_s']} tokens/s ({len(chosen)} prompts, {seconds:.1f} s)")
    generator.close()
    del generator
    release()
    return {"load_s": round(load_s, 2), "max_new_tokens": plan.max_new_tokens, "greedy": True, "runs": runs}


def generate_decoder(plan: Plan, model_dir: str, prompts: list[dict], clock: Clock) -> dict:
    """Section 5: tokens per second of ``decoder="generate"`` at each of ``plan.decoder_prompts``'s
    batch sizes, each timed twice (the first call compiles; the second is what a rollout's later
    calls of the same size cost)."""
    from text2sql_mlops.generation import GenerationRequest, SamplingParams, create_generator

    generator = create_generator("hf", model_path=model_dir, batch_size=1, progress=False, decoder="generate")
    requests = [GenerationRequest(messages=p["messages"]) for p in prompts]
    params = SamplingParams(max_new_tokens=plan.max_new_tokens)
    runs = []
    for batch_size, count in plan.decoder_prompts.items():
        if clock.left() < RESERVE_S["decoders"]:
            runs.append({"batch_size": batch_size, "skipped": f"time budget ({clock.left():.0f} s left)"})
            continue
        generator.batch_size = batch_size
        seconds = []
        for _ in range(2):
            reset_peak()
            synchronize()
            began = time.perf_counter()
            results = generator.generate(requests[:count], params)
            synchronize()
            seconds.append(time.perf_counter() - began)
        tokens = sum(samples[0].num_tokens for samples in results)
        runs.append({"batch_size": batch_size, "prompts": count, "generated_tokens": tokens, "seconds_first": round(seconds[0], 3),
                     "seconds": round(seconds[1], 3), "tokens_per_s": round(tokens / seconds[1], 1), "peak_gpu_gib": peak_gib()})
        clock.say(f"generate decoder batch {batch_size}: {runs[-1]['tokens_per_s']} tokens/s (first call {seconds[0]:.1f} s)")
    generator.close()
    del generator
    release()
    return {"runs": runs}


def rollout(plan: Plan, kit: Path, model_dir: str, work: Path) -> dict:
    """A 3-turn rollout on the real path: the eval stage's settings of profiles/spider.yaml."""
    from text2sql_mlops.core.records import read_trajectories
    from text2sql_mlops.rollout.command import run_rollout
    from text2sql_mlops.rollout.config import RolloutConfig

    config = RolloutConfig(
        dataset_path=str(kit / "rollout" / "questions.json"), db_root=str(kit / "rollout" / "database"),
        output_dir=str(work / "rollout"), generator="hf", model_path=model_dir, batch_size=plan.rollout_batch,
        max_new_tokens=plan.max_new_tokens, max_turns=plan.rollout_turns, feedback_detail="minimal",
        feedback_mode="error_only", repair_scope="verified", limit=plan.rollout_examples, chunk_size=plan.rollout_examples,
        overwrite=True, progress=False)
    reset_peak()
    began = time.perf_counter()
    summary = run_rollout(config)
    wall = time.perf_counter() - began
    trajectories = read_trajectories(work / "rollout")
    release()
    return {"examples": summary.examples, "max_turns": plan.rollout_turns, "batch_size": plan.rollout_batch,
            "turns_run": sum(len(t.turns) for t in trajectories), "wall_s": round(wall, 2),
            "timing": summary.timing, "generated_tokens": summary.generated_tokens,
            "executable_rate": summary.executable_rate, "peak_gpu_gib": peak_gib()}


def train_step(method: str, plan: Plan, model_dir: str, prompts: list[dict], work: Path) -> dict:
    """``plan.train_steps`` optimizer steps of our TRL trainer for ``method`` (LoRA), each timed."""
    import torch
    from transformers import AutoTokenizer, PrinterCallback, TrainerCallback
    from trl.kernels.chunked_logprob import _use_triton as use_triton

    from text2sql_mlops.core.records import Pair
    from text2sql_mlops.prompts import format_answer
    from text2sql_mlops.training import dpo, sft
    from text2sql_mlops.training.common import quiet_libraries
    from text2sql_mlops.training.config import DPOSettings, SFTSettings
    from text2sql_mlops.training.datasets import dpo_rows, sft_rows
    from text2sql_mlops.training.device import resolve_runtime

    class StepTimes(TrainerCallback):
        def __init__(self):
            self.seconds: list[float] = []

        def on_step_begin(self, args, state, control, **kwargs):
            synchronize()
            self.began = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            synchronize()
            self.seconds.append(round(time.perf_counter() - self.began, 3))

    quiet_libraries()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    batch = plan.sft_batch if method == "sft" else plan.dpo_batch
    wanted = batch * plan.train_steps
    picked = prompts[:: max(1, len(prompts) // wanted)][:wanted]  # spread over the databases: mixed lengths
    if method == "sft":
        rows, too_long = sft_rows(tokenizer, [(p["messages"], format_answer(p["gold"])) for p in picked], plan.max_length)
        module, settings_class = sft, SFTSettings
    else:
        pairs = [Pair(id=str(i), prompt=p["messages"], chosen=format_answer(p["gold"]), rejected=format_answer(p["rejected"]), meta={})
                 for i, p in enumerate(picked)]
        rows, too_long = dpo_rows(tokenizer, pairs, plan.max_length)
        module, settings_class = dpo, DPOSettings
    settings = settings_class(model=model_dir, out=str(work / method), max_steps=plan.train_steps,
                              per_device_train_batch_size=batch, max_length=plan.max_length, logging_steps=1000)
    runtime = resolve_runtime(settings.bf16, settings.gradient_checkpointing)
    reset_peak()
    timer = StepTimes()
    trainer = module.build_trainer(settings, rows, tokenizer, runtime, str(work / method), [timer])
    trainer.remove_callback(PrinterCallback)
    result = trainer.train()
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    # Tokens the model reads per example: a DPO pair runs the prompt twice (chosen, rejected).
    tokens = [len(row["input_ids"]) if "input_ids" in row else 2 * len(row["prompt_ids"]) + len(row["chosen_ids"]) + len(row["rejected_ids"])
              for row in rows]
    out = {"batch_size": batch, "examples": len(rows), "too_long": too_long, "step_s": timer.seconds,
           "tokens_per_step_mean": round(sum(tokens) / max(1, len(tokens)) * batch, 1), "peak_gpu_gib": peak_gib(),
           "trainable_parameters": trainable, "loss": result.training_loss, "runtime": asdict(runtime),
           # TRL's fused LM head folds its vocabulary tiles with Triton kernels or in torch (device.py)
           "log_prob_kernels": "triton" if use_triton(torch.device(runtime.device)) else "torch",
           "lora": {"r": settings.lora_r, "alpha": settings.lora_alpha, "targets": settings.lora_target_modules}}
    del trainer
    release()
    return out


def gib(value: float | None) -> str:
    return "n/a (CPU)" if value is None else str(value)


def markdown(results: dict) -> str:
    env, lines = results["environment"], []
    lines += [f"# GPU check ({results['plan']['name']}): {env['device']}", "",
              f"python {env['python']}, " + ", ".join(f"{k} {v}" for k, v in env["packages"].items() if v) + f"; total {results['wall_s']} s", ""]
    model = results.get("model", {})
    if "parameters" in model:
        lines += [f"Model: random {model['parameters'] / 1e9:.2f}B parameters ({model['layers']} layers, hidden {model['hidden_size']}, "
                  f"vocab {model['vocab_size']}), {model['dtype']}, built and saved in {model['seconds']} s; tokenizer SmolLM2 "
                  f"({model['tokenizer_size']} ids).", ""]
    gen = results.get("generation", {})
    if "runs" in gen:
        lines += [f"Generation (hf backend, greedy, max_new_tokens {gen['max_new_tokens']}, model load {gen['load_s']} s):", "",
                  "| batch | prompts | mean prompt tokens | generated tokens | seconds | tokens/s | peak GPU GiB |", "|---:|---:|---:|---:|---:|---:|---:|"]
        for run in gen["runs"]:
            if "skipped" in run:
                lines.append(f"| {run['batch_size']} | skipped: {run['skipped']} | | | | | |")
            else:
                lines.append(f"| {run['batch_size']} | {run['prompts']} | {run['prompt_tokens_mean']} | {run['generated_tokens']} | "
                             f"{run['seconds']} | {run['tokens_per_s']} | {gib(run['peak_gpu_gib'])} |")
        lines.append("")
    roll = results.get("rollout", {})
    if "wall_s" in roll:
        timing = roll["timing"]
        lines += [f"Rollout ({roll['max_turns']} turns, hf batch {roll['batch_size']}): {roll['examples']} questions, "
                  f"{roll['turns_run']} turns run, wall {roll['wall_s']} s (model load included), generation "
                  f"{timing.get('generation_s')} s, {roll['generated_tokens']} tokens, peak GPU GiB {gib(roll['peak_gpu_gib'])}.", ""]
    rows = [(m, results[m]) for m in ("sft", "dpo") if "step_s" in results.get(m, {})]
    if rows:
        lines += ["Training (LoRA, our TRL trainers):", "", "| method | batch | mean tokens per step | step seconds (first, then warm) | peak GPU GiB | trainable parameters | precision, checkpointing, log-prob kernels |",
                  "|---|---:|---:|---|---:|---:|---|"]
        lines += [f"| {m} | {r['batch_size']} | {r['tokens_per_step_mean']} | {', '.join(map(str, r['step_s']))} | {gib(r['peak_gpu_gib'])} | "
                  f"{r['trainable_parameters']:,} | {r['runtime']['dtype']}, {'on' if r['runtime']['gradient_checkpointing'] else 'off'}, "
                  f"{r['log_prob_kernels']} |" for m, r in rows]
        lines.append("")
    decoders = results.get("decoders", {})
    if "runs" in decoders:
        loop = {run["batch_size"]: run for run in gen.get("runs", []) if "tokens_per_s" in run}
        lines += ["Decoders (hf backend, the same prompts and greedy settings; generate's first call compiles):", "",
                  "| batch | prompts | loop tokens/s | generate tokens/s | generate first call s | generate / loop |", "|---:|---:|---:|---:|---:|---:|"]
        for run in decoders["runs"]:
            if "skipped" in run:
                lines.append(f"| {run['batch_size']} | skipped: {run['skipped']} | | | | |")
                continue
            mine = loop.get(run["batch_size"], {}).get("tokens_per_s")
            ratio = f"{run['tokens_per_s'] / mine:.2f}x" if mine else "n/a"
            lines.append(f"| {run['batch_size']} | {run['prompts']} | {mine or 'n/a'} | {run['tokens_per_s']} | {run['seconds_first']} | {ratio} |")
        lines.append("")
    notes = {name: f"{key}: {section[key]}" for name, section in results.items() if isinstance(section, dict)
             for key in ("error", "skipped") if key in section}
    if notes:
        lines += ["Sections that did not run:", ""] + [f"- {name}: {note}" for name, note in notes.items()] + [""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kit", default=str(HERE / "kit"), help="the folder prepare.py and fetch_wheels.sh filled")
    parser.add_argument("--out", default="gpu_check_out", help="folder for gpu_check.json and gpu_check.md")
    parser.add_argument("--work", default="/tmp/gpu_check_work", help="scratch folder for the model (6 GB) and runs, kept out of "
                        "--out so that only the results come back (default: %(default)s)")
    parser.add_argument("--smoke", action="store_true", help="a tiny model, few prompts, batch 1/2, 4 new tokens: runs on a CPU")
    parser.add_argument("--budget_s", type=float, default=420, help="seconds for all sections: one that would start too late is skipped (default: %(default)s)")
    args = parser.parse_args()
    plan = SMOKE if args.smoke else FULL
    kit, out = Path(args.kit), Path(args.out)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    clock = Clock(args.budget_s)
    import transformers

    transformers.utils.logging.disable_progress_bar()  # our timestamped lines instead of loading bars
    prompts = [json.loads(line) for line in (kit / "prompts.jsonl").read_text().splitlines()]

    results: dict = {"plan": asdict(plan), "environment": environment()}
    clock.say(f"{plan.name}: {results['environment']['device']}, {len(prompts)} prompts")
    model_dir = str(work / "model")
    sections = [
        ("model", lambda: build_model(plan, kit, work)),
        ("generation", lambda: generation_speed(plan, model_dir, prompts, clock)),
        ("rollout", lambda: rollout(plan, kit, model_dir, work)),
        ("sft", lambda: train_step("sft", plan, model_dir, prompts, work)),
        ("dpo", lambda: train_step("dpo", plan, model_dir, prompts, work)),
        ("decoders", lambda: generate_decoder(plan, model_dir, prompts, clock)),
    ]
    for name, run in sections:
        if name != "model" and "error" in results.get("model", {}):
            results[name] = {"error": "no model (see model)"}
            continue
        if clock.left() < RESERVE_S[name]:
            results[name] = {"skipped": f"time budget: {clock.left():.0f} s left of {args.budget_s:.0f}"}
            clock.say(f"{name}: skipped ({results[name]['skipped']})")
            continue
        began = time.perf_counter()
        try:
            results[name] = {**run(), "seconds": round(time.perf_counter() - began, 2)}
            clock.say(f"{name}: done in {results[name]['seconds']} s")
        except Exception as exc:  # one failing section must not cost the others' numbers
            traceback.print_exc()
            results[name] = {"error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}"}
            clock.say(f"{name}: FAILED {results[name]['error']}")
            release()
    results["wall_s"] = round(clock.elapsed(), 1)

    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(results, indent=2) + "\n")
    report = markdown(results)
    (out / "gpu_check.md").write_text(report)
    print(report)
    return 1 if any(isinstance(s, dict) and "error" in s for s in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
