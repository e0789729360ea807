#!/usr/bin/env bash
# SmolLM2-135M-Instruct rollouts on the first 200 questions of the Spider train split:
# one-shot, and 3-turn Column-Minimal repair with gold-free feedback (error_only) under the
# verified scope. That one repair run reports both final numbers: final_ex_oracle (repair
# stops at the first candidate matching gold) and final_ex_strict (greedy decoding makes the
# online-scope run a prefix of it; see rollout/metrics.py), so the strict configuration is
# not run again.
#   bash bench/smollm2_rollouts.sh [SPIDER_TRAIN_DIR] [MODEL_DIR] [OUT_DIR]
# Prints one summary line per run; the full summaries are OUT_DIR/*/summary.json.
set -euo pipefail
SPIDER=${1:-../shared/spider-train}
MODEL=${2:-models/smollm2-135m-instruct}
OUT=${3:-runs/bench-smollm2}
COMMON=(--dataset_path "$SPIDER" --generator hf --model_path "$MODEL" --limit 200 --batch_size 16
        --max_new_tokens 64 --schema_mode bm25_fk --top_k_tables 6 --fk_hops 1 --seed 0 --no_progress)
[ -d "$MODEL" ] || text2sql-mlops model prepare --out "$MODEL"
text2sql-mlops rollout "${COMMON[@]}" --output_dir "$OUT/one_shot" --max_turns 1
text2sql-mlops rollout "${COMMON[@]}" --output_dir "$OUT/minimal" --max_turns 3 \
    --feedback_detail minimal --repair_scope verified --feedback_mode error_only
