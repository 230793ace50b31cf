#!/usr/bin/env bash
# The paper's fine-tuning experiment (Bau et al. 2017, §4.4, Fig. 14): a network trained on one
# task (scenes) fine-tuned to the other (objects) with nd-train --init-from; both dissected in one
# run, and the study report's unit-by-unit transitions show how many units keep their concept.
# Usage: tools/studies/finetune.sh   (env: STUDY_ROOT, STUDY_* sizes in common.sh)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
study_dir finetune
shared_data
timed "train scene s1" train "$models/baseline-s1.pt" --seed 1 --batchnorm off --dropout on --lr 0.02
timed "fine-tune to object" train "$models/scene-to-object-s1.pt" --seed 1 --task object \
  --init-from "$models/baseline-s1.pt" --lr 0.01 --epochs "$(((epochs + 1) / 2))"
config "$STUDY_DIR/pipeline.toml" "$STUDY_DIR/out" \
  "$(model_table scene "$models/baseline-s1.pt" before 1)" \
  "$(model_table scene-to-object "$models/scene-to-object-s1.pt" after 1)"
timed "dissect both" "$bin/nd-pipeline" up -c "$STUDY_DIR/pipeline.toml" >"$STUDY_DIR/up.log" 2>&1
echo "## Fine-tuning: scene -> object, $dissect_images images"
table "$STUDY_DIR/out" runs
echo
table "$STUDY_DIR/out" transitions
echo
awk -F'\t' 'BEGIN {print "| step | wall s |\n|---|---|"} {print "| " $1 " | " $2 " |"}' "$STUDY_DIR/times.tsv"
