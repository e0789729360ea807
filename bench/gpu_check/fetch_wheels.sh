#!/usr/bin/env bash
# Download here (PyPI) the wheels bench/gpu_check.sh installs offline on the GPU machine.
#
#   bash bench/gpu_check/fetch_wheels.sh [DIR]      # default DIR: bench/gpu_check/kit/wheels
#
# Versions come from constraints.txt (what this project's tests run). The GPU image has
# torch, peft, accelerate, pandas, pyarrow, xxhash, fsspec and transformers 5.17, below this
# project's floor (5.20, the GPU set's; pyproject.toml). So:
#   transformers  the CPU tests' 5.24 (13 MiB)
#   trl           training (TRL's trainers)
#   datasets      TRL imports it when its trainers load (sft_trainer.py, dpo_trainer.py,
#                 data_utils.py), and our trainers hand it Dataset.from_list: not avoidable.
#                 Its wheel is 0.6 MiB; its big needs (pyarrow 48 MiB, pandas) are in the image
#   dill, multiprocess   what datasets imports and the image lacks
#   peft          the version our adapters are tested with (the image's is unknown)
#   sqlglot, sqlparse, rank-bm25   the project's own needs (feedback, scoring, retrieval)
# About 17 MiB together. Built for CPython ${PYVER:-3.12} on x86-64 Linux (the GPU image's
# python3 is 3.12); PYVER=3.11 fetches this machine's. --no-deps: each need is named here.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/../.." && pwd)
DEST=${1:-$REPO/bench/gpu_check/kit/wheels}
PYVER=${PYVER:-3.12}
PIP=${PIP:-python3 -m pip}
NAMES=(transformers trl datasets dill multiprocess peft sqlglot sqlparse rank-bm25)

pins=()
for name in "${NAMES[@]}"; do
    pin=$(grep -E "^${name}==" "$REPO/constraints.txt" || true)
    [ -n "$pin" ] || { echo "error: $name is not pinned in constraints.txt" >&2; exit 2; }
    pins+=("$pin")
done

mkdir -p "$DEST"
rm -f "$DEST"/*.whl  # one version of each: two would stop the install
$PIP download --quiet --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --dest "$DEST" "${pins[@]}"
ls -l "$DEST"
du -sh "$DEST"
