#!/usr/bin/python3
"""End to end, in a real headless Chromium (Debian's chromium + chromium-driver, python3-selenium):
`nd-pipeline up` on a generated Broden with three models of one layer `detect` ([[models]] with
group and iteration) and a rotation sweep (two [[view]] tables, seeds 1 and 2, alpha 0, 0.5, 1),
then study.html is opened and every chart must be there with the number of bars, series and
points the configuration implies, the example strips must load, and the console must hold no
error.

Usage: study_browser_test.py BIN_DIR SOURCE_DIR WORK_DIR
Exit 0 on success, 1 on failure, 77 (ctest: skipped) without chromium, chromedriver or selenium.

Expected, from the configuration below:
  models planted (5 units), rand and rand2 (6 units each; rand2 is rand with every unit scaled by
    2, and its hand-written nd-train record names rand.pt as init_from: the pair rand -> rand2 is
    found without --compare, and as scaling changes no threshold decision, all 6 units keep their
    label);
  chart-categories: one bar per model x layer = 3;
  chart-iterations: one group "g", one layer: 1 series of 3 points, in two panels (unique
    detectors, detectors) = 6 circles;
  chart-rotation: one series per model x layer = 3, each 3 alphas = 9 circles, each the mean of
    2 seeds;
  transitions: 1 pair, 6 units, 6 kept; example strips: 4 units x (before, after) = 8 images;
  runs table: 3 models x (1 layer + 2 views x 3 alphas) = 21 rows.
"""
import csv
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "testing"))
from browser import SKIP, check, fail, missing_browser, run, start_chromium  # noqa: E402


def train_record(model, iteration, val, init_from):
    """An nd-train record (tools/train/train_record_file.h, version 1), written by hand."""
    options = {"data": "broden", "out": model, "arch": "resnet", "width": 4, "blocks": 1,
               "stem_pool": True, "last_stride": 2, "batchnorm": True, "dropout": False,
               "epochs": 1, "seed": 5, "input_size": 64, "batch_size": 8, "lr": 0.05,
               "optimizer": "sgd", "checkpoint_every": 0, "checkpoint_schedule": "every",
               "checkpoints": 0, "threads": 1, "preprocess": "torchvision", "flip": True,
               "task": "object", "init_from": init_from}
    return {"format": "nd-train-record", "version": 1, "model": os.path.basename(model),
            "final": True, "iteration": iteration, "total_iterations": iteration, "epoch": 1.0,
            "train_accuracy": 0.9, "val_accuracy": val, "train_images": 30, "val_images": 10,
            "skipped_images": 0, "task": "object", "classes": ["a", "b"],
            "class_labels": [1, 2], "seed": 5, "init_from": init_from,
            "init_from_sha256": "", "options": options}


def main():
    if len(sys.argv) < 4:
        print(__doc__)
        return 2
    bin_dir, src, work = sys.argv[1:4]
    skip = missing_browser()
    if skip:
        print(skip)
        return SKIP
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    started = time.monotonic()
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    run([bin_dir + "/nd-make-broden", "--out", work + "/broden", "--images", "40", "--seed", "5",
         "--size", "128"])
    py = "/usr/bin/python3"
    run([py, src + "/tests/fixtures/make_planted_model.py", work + "/planted.pt"])
    run([py, src + "/tests/fixtures/make_random_conv_model.py", work + "/rand.pt"])
    run([py, src + "/tests/fixtures/make_random_conv_model.py", work + "/rand2.pt",
         "2,2,2,2,2,2"])
    with open(work + "/rand2.pt.json", "w") as f:
        f.write(json.dumps(train_record(work + "/rand2.pt", 400, 0.5, work + "/rand.pt")) + "\n")
    cfg = work + "/pipeline.toml"
    with open(cfg, "w") as f:
        f.write('[dataset]\npath = "broden"\n[model]\nlayers = ["detect"]\nbatch_size = 8\n'
                '[threshold]\nquantile = 0.05\n[cache]\ndir = "cache"\n[output]\ndir = "out"\n'
                '[run]\ntimeout_s = 60\n')
        for name, it in (("planted", 1), ("rand", 10), ("rand2", 100)):
            f.write('[[models]]\nname = "%s"\npath = "%s.pt"\ngroup = "g"\niteration = %d\n'
                    % (name, name, it))
        for name, seed in (("rot1", 1), ("rot2", 2)):
            f.write('[[view]]\nname = "%s"\nlayer = "detect"\nbasis = "rotation"\nseed = %d\n'
                    'alpha = [0, 0.5, 1]\n' % (name, seed))
    out = run([bin_dir + "/nd-pipeline", "up", "-c", cfg], timeout=180)
    check("study: " in out, "up printed no study line:\n" + out)
    report = work + "/out/report"
    study = report + "/study.html"
    check(os.path.exists(study), "no " + study)
    for name in ("runs", "categories", "iterations", "rotation", "transitions"):
        check(os.path.exists("%s/study_%s.csv" % (report, name)), "no study_%s.csv" % name)
    with open(report + "/study_transitions.csv", newline="") as f:
        trans = list(csv.DictReader(f))
    check(sum(int(r["units"]) for r in trans) == 6, "transitions cover %s units" % trans)
    check(all(r["from_label"] == r["to_label"] for r in trans), "a label changed: %s" % trans)
    with open(report + "/study_rotation.csv", newline="") as f:
        rot = list(csv.DictReader(f))
    check(len(rot) == 9 and all(r["seeds"] == "2" for r in rot), "rotation rows %s" % rot)
    print("pipeline and report in %.1f s" % (time.monotonic() - started))

    driver = start_chromium(work + "/profile", ["--allow-file-access-from-files"],
                            browser_log=True)
    try:
        driver.get("file://" + os.path.abspath(study))
        WebDriverWait(driver, 20).until(
            lambda d: d.execute_script("return document.body.getAttribute('data-ready')") == "1")
        n = lambda sel: len(driver.find_elements(By.CSS_SELECTOR, sel))
        attr = lambda sel, a: driver.find_element(By.CSS_SELECTOR, sel).get_attribute(a)
        for chart in ("chart-categories", "chart-iterations", "chart-rotation", "transitions",
                      "strips"):
            check(n('p.missing[data-chart="%s"]' % chart) == 0, "%s is missing: %s" % (chart, [
                e.text for e in driver.find_elements(By.CSS_SELECTOR, "p.missing")]))
        check(n("#chart-categories g.bar") == 3, "%d bars" % n("#chart-categories g.bar"))
        check(attr("#chart-categories", "data-bars") == "3", "data-bars")
        check(n("#chart-categories .legend .key") >= 1, "no category legend")
        check(n("#chart-iterations svg.panel") == 2, "%d panels" % n("#chart-iterations svg"))
        check(n("#chart-iterations g.series") == 2, "iteration series (1 per panel)")
        check(n("#chart-iterations circle.pt") == 6, "%d iteration points"
              % n("#chart-iterations circle.pt"))
        its = sorted(int(e.get_attribute("data-iteration")) for e in driver.find_elements(
            By.CSS_SELECTOR, "#chart-iterations svg[data-measure=unique] circle.pt"))
        check(its == [1, 10, 100], "iterations %s" % its)
        check(n("#chart-iterations polyline.accuracy") >= 1, "no accuracy line")
        check(n("#chart-rotation g.series") == 3, "%d rotation series"
              % n("#chart-rotation g.series"))
        check(n("#chart-rotation circle.pt") == 9, "%d rotation points"
              % n("#chart-rotation circle.pt"))
        seeds = {e.get_attribute("data-seeds") for e in driver.find_elements(
            By.CSS_SELECTOR, "#chart-rotation circle.pt")}
        check(seeds == {"2"}, "seeds per point %s" % seeds)
        check(n("#transitions div.pair") == 1, "%d pairs" % n("#transitions div.pair"))
        pair = driver.find_element(By.CSS_SELECTOR, "#transitions div.pair")
        check((pair.get_attribute("data-a"), pair.get_attribute("data-b"),
               pair.get_attribute("data-units"), pair.get_attribute("data-kept")) ==
              ("rand", "rand2", "6", "6"), "pair %s" % pair.get_attribute("outerHTML")[:300])
        strips = driver.find_elements(By.CSS_SELECTOR, "#transitions img.strip")
        check(len(strips) == 8, "%d strips" % len(strips))
        WebDriverWait(driver, 10).until(lambda d: all(d.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth > 0", s) for s in strips))
        check(n("#runs tr.run") == 21, "%d runs" % n("#runs tr.run"))
        # Sorting the table by a column keeps every row.
        driver.find_elements(By.CSS_SELECTOR, "#runs thead th")[9].click()
        check(n("#runs tr.run") == 21, "rows lost when sorting")
        errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        check(not errors, "console errors: %s" % errors)
        driver.save_screenshot(work + "/study.png")
    finally:
        driver.quit()
    print("PASS in %.1f s" % (time.monotonic() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main())
