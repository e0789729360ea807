#!/usr/bin/env bash
# The preference data engine on the Spider train split: mock-generator rollouts (repair
# trajectories without a model) on TRAIN_LIMIT questions, synthetic hard negatives from the
# same questions' gold SQL, mining, Synth20 merge/filter/balance, and the Raw-vs-Filtered
# dashboard. The dev set is held out by database: the last 20 databases (by name) play the
# evaluation set and the guard keeps them out.
#   bash bench/pairs_spider.sh [SPIDER_TRAIN_DIR] [OUT_DIR] [TRAIN_LIMIT]
set -euo pipefail
SPIDER=${1:-../shared/spider-train}
OUT=${2:-runs/bench-pairs}
LIMIT=${3:-1000}
mkdir -p "$OUT"
python "$(dirname "$0")/spider_holdout.py" "$SPIDER" "$OUT"
DB=(--db_root "$SPIDER/database")
EVAL=(--eval_dataset "$OUT/heldout.json" --eval_db_root "$SPIDER/database")
time text2sql-mlops rollout --dataset_path "$OUT/train.json" "${DB[@]}" --tables_json "$SPIDER/tables.json" \
    --output_dir "$OUT/rollout" --generator mock --limit "$LIMIT" --max_turns 3 --repair_scope verified \
    --feedback_mode result_status --use_gold_when_failed "${EVAL[@]}" --overwrite --no_progress
time text2sql-mlops pairs synth --dataset_path "$OUT/train.json" "${DB[@]}" --tables_json "$SPIDER/tables.json" \
    --limit "$LIMIT" --out "$OUT/synth.jsonl" "${EVAL[@]}" --no_progress
time text2sql-mlops pairs mine --trajectories "$OUT/rollout" --out "$OUT/natural.jsonl" --use_gold_when_failed "${EVAL[@]}"
cat "$OUT/natural.jsonl" "$OUT/synth.jsonl" > "$OUT/raw.jsonl"
time text2sql-mlops pairs merge --inputs "$OUT/natural.jsonl" "$OUT/synth.jsonl" --output "$OUT/filtered.jsonl" \
    --input_fraction_limits 1.0 0.2 --pair_type_max_fractions gold_vs_failed_attempt=0.2 --min_reward_margin 0.3 \
    --max_sql_edit_distance_ratio 1.0 --shuffle --seed 0 "${EVAL[@]}" --stats "$OUT/merge_stats.json"
text2sql-mlops pairs report --datasets Raw="$OUT/raw.jsonl" Filtered="$OUT/filtered.jsonl" --out "$OUT/dashboard"
