#!/usr/bin/env bash
# The paper's axis-alignment test (Bau et al. 2017, §3.2, Fig. 6): dissect the demo model's layer4
# seen through random rotations R^alpha, alpha = 0, 0.25, 0.5, 0.75, 1, three rotations (seeds
# 1-3): if interpretable units were just any directions, unique detectors would not change with
# alpha. Views are computed from the activation cache, so after the demo's own run (or the first
# run here) no image goes through the network again.
# Usage: tools/studies/rotation_sweep.sh   (env: STUDY_ROOT; the demo dataset is made when missing)
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
study_dir rotation
dataset "$repo/demo/broden" 2000 1 224
base() {
  printf '[dataset]\npath = "%s"\n[model]\npath = "%s"\nlayers = ["layer4"]\ninput_size = 128\n' \
    "$repo/demo/broden" "$repo/tools/demo_model/demo_resnet.pt"
  printf '[cache]\ndir = "%s"\ndtype = "float16"\n[output]\ndir = "%s"\n' "$repo/demo/cache" "$1"
}
base "$STUDY_DIR/plain" > "$STUDY_DIR/plain.toml"
{
  base "$STUDY_DIR/sweep"
  for seed in 1 2 3; do
    printf '[[view]]\nname = "rot%s"\nlayer = "layer4"\nbasis = "rotation"\nseed = %s\n' "$seed" "$seed"
    printf 'alpha = [0, 0.25, 0.5, 0.75, 1]\n'
  done
} > "$STUDY_DIR/sweep.toml"
# The cache holds layer4 for every image (one up; no-op when the demo ran already).
"$bin/nd-pipeline" up --no-report -c "$STUDY_DIR/plain.toml" >"$STUDY_DIR/plain_up.log" 2>&1
timed "rescore layer4 (no views)" \
  "$bin/nd-pipeline" rescore --no-report -c "$STUDY_DIR/plain.toml" >"$STUDY_DIR/plain.log" 2>&1
timed "15 rotation views + layer4" \
  "$bin/nd-pipeline" rescore --no-report -c "$STUDY_DIR/sweep.toml" >"$STUDY_DIR/sweep.log" 2>&1
"$bin/nd-report" -c "$STUDY_DIR/sweep.toml" --study-only >"$STUDY_DIR/report.log" 2>&1 ||
  echo "study report: see $STUDY_DIR/report.log" >&2
echo "## Rotation sweep: demo model layer4, 2,000 images"
table "$STUDY_DIR/sweep" rotation
echo
echo "| run | wall s |"
echo "|---|---|"
tail -2 "$STUDY_DIR/times.tsv" | awk -F'\t' '{print "| " $1 " | " $2 " |"}'
