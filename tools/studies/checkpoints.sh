#!/usr/bin/env bash
# The paper's training-duration series (Bau et al. 2017, §4.3, Fig. 12): one network saved at
# geometrically spaced iterations (nd-train --checkpoint-schedule geometric: 1, ~2.2x apart, ..., the
# last), each checkpoint's train and validation accuracy recorded beside it, and all checkpoints
# dissected in one run: detectors and unique detectors against iteration.
# Usage: tools/studies/checkpoints.sh   (env: STUDY_ROOT, STUDY_* sizes in common.sh)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
study_dir checkpoints
shared_data
out="$models/series-s1.pt"
timed "train with 10 checkpoints" train "$out" --seed 1 --batchnorm off --dropout on --lr 0.02 \
  --epochs "$((epochs * 2))" --checkpoint-schedule geometric --checkpoints 10
tables=()
for ckpt in "$out".ckpt-*.pt; do
  iteration="${ckpt##*.ckpt-}"
  iteration="${iteration%.pt}"
  tables+=("$(model_table "it$iteration" "$ckpt" series 1 "$iteration")")
done
config "$STUDY_DIR/pipeline.toml" "$STUDY_DIR/out" "${tables[@]}"
timed "dissect ${#tables[@]} checkpoints" "$bin/nd-pipeline" up -c "$STUDY_DIR/pipeline.toml" >"$STUDY_DIR/up.log" 2>&1
echo "## Checkpoint series: ${#tables[@]} checkpoints, $dissect_images images"
table "$STUDY_DIR/out" runs
echo
awk -F'\t' 'BEGIN {print "| step | wall s |\n|---|---|"} {print "| " $1 " | " $2 " |"}' "$STUDY_DIR/times.tsv"
