#!/usr/bin/env bash
# SFT (12 steps of 4 examples) then DPO (8 steps of 2 pairs) of SmolLM2-135M-Instruct on 200 Spider train questions, and strict one-shot EX
# before and after on 100 questions from databases never used for training.
#   bash bench/train_spider.sh [SPIDER_TRAIN_DIR] [MODEL_DIR] [OUT_DIR]
# Split: the 20 last databases by name are held out; their first 100 questions are the
# evaluation set (the guard keeps them out of every training input). The training data are
# the first 200 remaining questions: repair trajectories from the mock generator (its
# repaired answers are the gold SQL, so SFT targets are verified gold on first-turn and
# repair prompts; SmolLM2 itself solves almost none of them) and their mined pairs plus
# synthetic hard negatives, merged with the Synth20 recipe.
set -euo pipefail
SPIDER=${1:-../shared/spider-train}
MODEL=${2:-models/smollm2-135m-instruct}
OUT=${3:-runs/bench-train}
mkdir -p "$OUT"
python "$(dirname "$0")/spider_holdout.py" "$SPIDER" "$OUT" --eval_limit 100
DB=(--db_root "$SPIDER/database" --tables_json "$SPIDER/tables.json")
GUARD=(--eval_dataset "$OUT/heldout.json" --eval_db_root "$SPIDER/database")
EVAL=(--dataset_path "$OUT/heldout.json" "${DB[@]}" --split dev --max_turns 1 --max_new_tokens 64 --batch_size 16 --no_progress)
text2sql-mlops rollout --dataset_path "$OUT/train.json" "${DB[@]}" --output_dir "$OUT/rollout" --generator mock \
    --limit 200 --max_turns 3 --repair_scope verified --feedback_mode result_status --use_gold_when_failed "${GUARD[@]}" --no_progress
text2sql-mlops pairs synth --dataset_path "$OUT/train.json" "${DB[@]}" --limit 200 --out "$OUT/synth.jsonl" "${GUARD[@]}" --no_progress
text2sql-mlops pairs mine --trajectories "$OUT/rollout" --out "$OUT/natural.jsonl" --use_gold_when_failed "${GUARD[@]}"
text2sql-mlops pairs merge --inputs "$OUT/natural.jsonl" "$OUT/synth.jsonl" --output "$OUT/pairs.jsonl" \
    --input_fraction_limits 1.0 0.2 --pair_type_max_fractions gold_vs_failed_attempt=0.2 --min_reward_margin 0.3 \
    --max_sql_edit_distance_ratio 1.0 --shuffle --seed 0 "${GUARD[@]}"
time text2sql-mlops train sft --model "$MODEL" --trajectories "$OUT/rollout" --out "$OUT/sft" "${GUARD[@]}" \
    --per_device_train_batch_size 2 --gradient_accumulation_steps 2 --max_steps 12 --learning_rate 2e-4 --logging_steps 2
time text2sql-mlops train dpo --model "$MODEL" --pairs "$OUT/pairs.jsonl" --init_adapter "$OUT/sft" --out "$OUT/sft_dpo" \
    "${GUARD[@]}" --per_device_train_batch_size 1 --gradient_accumulation_steps 2 --max_steps 8 --learning_rate 5e-5 --logging_steps 2
text2sql-mlops eval --model_path "$MODEL" "${EVAL[@]}" --output_dir "$OUT/eval_base"
text2sql-mlops eval --adapter "$OUT/sft" --model_path "$MODEL" "${EVAL[@]}" --output_dir "$OUT/eval_sft"
text2sql-mlops eval --adapter "$OUT/sft_dpo" --model_path "$MODEL" "${EVAL[@]}" --output_dir "$OUT/eval_sft_dpo"
text2sql-mlops compare --runs Base="$OUT/eval_base" SFT="$OUT/eval_sft" SFT+DPO="$OUT/eval_sft_dpo" --out "$OUT/compare"
