# Shared by the study scripts of tools/studies/ (sourced, not run): where things are, the datasets,
# the training command and the table printer. Studies share $STUDY_ROOT (default /tmp/nd-studies):
# the generated datasets (train_data: seed 7, dissect_data: seed 1), the trained networks
# (models/) and one activation cache (cache/), so a network trained or dissected by one study is
# reused by the next; each study writes its configs, logs and results under $STUDY_ROOT/<study>.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="${ND_BIN_DIR:-$repo/build/bin}"
py=/usr/bin/python3
for tool in nd-make-broden nd-train nd-pipeline nd-report; do
  [ -x "$bin/$tool" ] || { echo "study: $bin/$tool is missing: run tools/setup.sh first" >&2; exit 1; }
done
threads="${STUDY_THREADS:-$(nproc)}"

STUDY_ROOT="${STUDY_ROOT:-/tmp/nd-studies}"
models="$STUDY_ROOT/models"

# study_dir NAME: the study's folder ($STUDY_DIR), created, with the shared datasets.
study_dir() {
  STUDY_DIR="$STUDY_ROOT/$1"
  mkdir -p "$STUDY_DIR" "$models"
  echo "study $1: $STUDY_DIR" >&2
}

# shared_data: the training and dissection datasets of the training studies.
shared_data() {
  dataset "$STUDY_ROOT/train_data" "$train_images" 7 "$data_size"
  dataset "$STUDY_ROOT/dissect_data" "$dissect_images" 1 "$data_size"
}

# dataset DIR IMAGES SEED SIZE: a generated Broden directory (kept when it already exists).
dataset() {
  if [ ! -f "$1/index.csv" ]; then
    "$bin/nd-make-broden" --out "$1" --images "$2" --seed "$3" --size "$4" --threads "$threads" >&2
  fi
}

# The networks of the training studies: a small ResNet (layer1..layer4) that trains in about a
# minute on 2 cores. STUDY_* variables scale it up.
train_images="${STUDY_TRAIN_IMAGES:-2000}"   # generated training images (seed 7)
dissect_images="${STUDY_IMAGES:-1000}"         # generated images to dissect (seed 1)
input_size="${STUDY_INPUT_SIZE:-96}"
data_size="${STUDY_DATA_SIZE:-128}"          # generated image size (segmentation: half of it)
width="${STUDY_WIDTH:-16}"
epochs="${STUDY_EPOCHS:-6}"

# train OUT [nd-train flags...]: trains (skipped when OUT and its record exist) with the study's
# common architecture; the flags given come last and win.
train() {
  local out="$1"
  shift
  if [ -f "$out" ] && [ -f "$out.json" ]; then return 0; fi
  "$bin/nd-train" --data "$STUDY_ROOT/train_data" --out "$out" --arch resnet --width "$width" \
    --last-stride 1 --input-size "$input_size" --epochs "$epochs" --threads "$threads" "$@" \
    > "$out.log" 2>&1 || { tail -5 "$out.log" >&2; return 1; }
}

# config FILE OUTPUT [extra TOML...]: a pipeline config dissecting the study's dataset at layer3
# and layer4 into OUTPUT, with the study's one cache.
config() {
  local file="$1" output="$2"
  shift 2
  {
    printf '[dataset]\npath = "%s"\n' "$STUDY_ROOT/dissect_data"
    printf '[model]\nlayers = ["layer3", "layer4"]\ninput_size = %s\n' "$input_size"
    printf '[cache]\ndir = "%s"\ndtype = "float16"\n' "$STUDY_ROOT/cache"
    printf '[output]\ndir = "%s"\n' "$output"
    for extra in "$@"; do printf '%s\n' "$extra"; done
  } > "$file"
}

# model_table NAME PATH GROUP SEED [ITERATION]: a [[models]] table.
model_table() {
  printf '[[models]]\nname = "%s"\npath = "%s"\ngroup = "%s"\nseed = %s\n' "$1" "$2" "$3" "$4"
  if [ -n "${5:-}" ]; then printf 'iteration = %s\n' "$5"; fi
}

# timed LABEL COMMAND...: runs it, appends "LABEL<TAB>seconds" to $STUDY_DIR/times.tsv.
timed() {
  local label="$1"
  shift
  local t0 t1
  t0=$(date +%s.%N)
  "$@"
  t1=$(date +%s.%N)
  printf '%s\t%.1f\n' "$label" "$(echo "$t1 - $t0" | bc)" >> "$STUDY_DIR/times.tsv"
}

# table OUTPUT KIND: a Markdown table from the study report of OUTPUT (<OUTPUT>/report/study_*.csv,
# written by `nd-pipeline up` for a run with [[models]] or [[view]], or `nd-report --study-only`):
# KIND runs (every model and layer), rotation, categories or transitions.
table() {
  local csv="$1/report/study_$2.csv"
  case "$2" in
    runs) "$py" "$repo/tools/studies/csv_table.py" "$csv" model group seed iteration val_accuracy \
            set units detectors unique_detectors_paper unique_detectors_top_label ;;
    rotation) "$py" "$repo/tools/studies/csv_table.py" "$csv" model layer alpha seeds unique_mean \
                unique_min unique_max detectors_mean ;;
    categories) "$py" "$repo/tools/studies/csv_table.py" "$csv" model layer category detectors \
                  unique_detectors_paper --where view= ;;
    transitions) "$py" "$repo/tools/studies/csv_table.py" "$csv" model_a model_b layer from_label \
                   to_label units detector_units --top 12 ;;
  esac
}
