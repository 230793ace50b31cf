#!/usr/bin/env bash
# The paper's training conditions (Bau et al. 2017, §4.2, Fig. 10): the same network trained as a
# baseline (dropout, no batch norm), without dropout, with batch norm, and not trained at all
# (random initialisation), three seeds each, dissected in ONE run of twelve models (each image
# decoded once): detectors and unique detectors per condition at layer3 and layer4.
# Usage: tools/studies/training_conditions.sh   (env: STUDY_ROOT, STUDY_* sizes in common.sh)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
study_dir conditions
shared_data
tables=()
for seed in 1 2 3; do
  timed "train baseline s$seed" train "$models/baseline-s$seed.pt" --seed "$seed" --batchnorm off --dropout on --lr 0.02
  timed "train no-dropout s$seed" train "$models/nodropout-s$seed.pt" --seed "$seed" --batchnorm off --dropout off --lr 0.02
  timed "train batchnorm s$seed" train "$models/batchnorm-s$seed.pt" --seed "$seed" --batchnorm on --dropout on
  timed "random s$seed" train "$models/random-s$seed.pt" --seed "$seed" --batchnorm off --dropout on --epochs 0
  for condition in baseline nodropout batchnorm random; do
    tables+=("$(model_table "$condition-s$seed" "$models/$condition-s$seed.pt" "$condition" "$seed")")
  done
done
config "$STUDY_DIR/pipeline.toml" "$STUDY_DIR/out" "${tables[@]}"
timed "dissect 12 models" "$bin/nd-pipeline" up -c "$STUDY_DIR/pipeline.toml" >"$STUDY_DIR/up.log" 2>&1
echo "## Training conditions: ResNet (width $width, input $input_size), 3 seeds, $dissect_images images"
table "$STUDY_DIR/out" runs
echo
echo "| step | wall s |"
echo "|---|---|"
awk -F'\t' '{print "| " $1 " | " $2 " |"}' "$STUDY_DIR/times.tsv"
