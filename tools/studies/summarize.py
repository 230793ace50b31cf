#!/usr/bin/python3
"""Prints a Markdown table of every dissection result under a study's output folder: one row per
summary.json (model, layer or view), with the model's [[models]] metadata from the run's
config.toml (<output>/.run/config.toml) and validation accuracy from the nd-train record beside the
model file (tools/train/train_record_file.h: <model>.json, or <out>.ckpt-<I>.json for a checkpoint).

Usage: summarize.py OUTPUT_DIR [--by-alpha]
--by-alpha: instead, unique detectors (paper rule) of rotation views by alpha: mean, min and max
over seeds, per model and source layer.
"""
import json
import os
import re
import statistics
import sys

try:
    import tomllib  # Python 3.11 (Debian 12)
except ImportError:  # pragma: no cover
    tomllib = None


def models_of(output):
    path = os.path.join(output, ".run", "config.toml")
    if tomllib is None or not os.path.exists(path):
        return {}
    with open(path, "rb") as f:
        cfg = tomllib.load(f)
    return {m["name"]: m for m in cfg.get("models", [])}


def record_of(model_path):
    for candidate in (re.sub(r"\.pt$", ".json", model_path) if ".ckpt-" in model_path else None,
                      model_path + ".json"):
        if candidate and os.path.exists(candidate):
            try:
                with open(candidate) as f:
                    return json.load(f)
            except (OSError, ValueError):
                print(f"{candidate}: not a readable training record", file=sys.stderr)
    return {}


def rows(output):
    models = models_of(output)
    out = []
    for root, _, files in os.walk(output):
        if "summary.json" not in files or os.sep + "report" in root:
            continue
        with open(os.path.join(root, "summary.json")) as f:
            s = json.load(f)
        name = s.get("model_name", "")
        meta = models.get(name, {})
        rec = record_of(s.get("model", ""))
        it = meta.get("iteration", -1)
        if it == -1:
            it = rec.get("iteration", -1)
        out.append({
            "model": name or os.path.basename(s.get("model", "")),
            "group": meta.get("group", ""),
            "seed": meta.get("seed", -1),
            "iteration": it,
            "val": rec.get("val_accuracy", meta.get("accuracy", -1)),
            "set": s["layer"],
            "view": s.get("view"),
            "units": s["units"],
            "detectors": s["detectors"],
            "unique": s["unique_detectors_paper"],
            "unique_top": s["unique_detectors_top_label"],
        })
    out.sort(key=lambda r: (r["group"], r["seed"], r["iteration"], r["model"], r["set"]))
    return out


def fmt(v):
    if v in (-1, None, ""):
        return "–"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def main():
    output = sys.argv[1]
    rs = rows(output)
    if "--by-alpha" in sys.argv:
        groups = {}
        for r in rs:
            v = r["view"]
            if not v or v.get("basis") != "rotation":
                continue
            groups.setdefault((r["model"], v["layer"], v["alpha"]), []).append(r["unique"])
        print("| model | layer | alpha | seeds | unique detectors: mean | min | max |")
        print("|---|---|---|---|---|---|---|")
        for (m, layer, a), u in sorted(groups.items()):
            print(f"| {m} | {layer} | {a:g} | {len(u)} | {statistics.mean(u):.1f} | {min(u)} | "
                  f"{max(u)} |")
        return
    print("| model | group | seed | iteration | val acc | layer | units | detectors | unique "
          "(paper) | unique (top label) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rs:
        print(f"| {r['model']} | {fmt(r['group'])} | {fmt(r['seed'])} | {fmt(r['iteration'])} | "
              f"{fmt(r['val'])} | {r['set']} | {r['units']} | {r['detectors']} | {r['unique']} | "
              f"{r['unique_top']} |")


if __name__ == "__main__":
    main()
