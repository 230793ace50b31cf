#!/usr/bin/env bash
# The paper's ImageNet vs Places comparison (Bau et al. 2017, §4.1, Fig. 8): the same network
# trained on two tasks of the generated data, naming the scene (the Places analogue) or the main
# object (the ImageNet analogue), two seeds each, dissected in one run: which categories the
# unique detectors of each task fall into.
# Usage: tools/studies/two_tasks.sh   (env: STUDY_ROOT, STUDY_* sizes in common.sh)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
study_dir tasks
shared_data
tables=()
for seed in 1 2; do
  # The scene network is the conditions study's baseline (trained here if that study has not run).
  timed "train scene s$seed" train "$models/baseline-s$seed.pt" --seed "$seed" --batchnorm off --dropout on --lr 0.02
  timed "train object s$seed" train "$models/object-s$seed.pt" --seed "$seed" --batchnorm off --dropout on --lr 0.02 --task object
  tables+=("$(model_table "scene-s$seed" "$models/baseline-s$seed.pt" scene "$seed")")
  tables+=("$(model_table "object-s$seed" "$models/object-s$seed.pt" object "$seed")")
done
config "$STUDY_DIR/pipeline.toml" "$STUDY_DIR/out" "${tables[@]}"
timed "dissect 4 models" "$bin/nd-pipeline" up -c "$STUDY_DIR/pipeline.toml" >"$STUDY_DIR/up.log" 2>&1
echo "## Two tasks: scene vs object, 2 seeds, $dissect_images images"
table "$STUDY_DIR/out" runs
echo
table "$STUDY_DIR/out" categories
echo
awk -F'\t' 'BEGIN {print "| step | wall s |\n|---|---|"} {print "| " $1 " | " $2 " |"}' "$STUDY_DIR/times.tsv"
