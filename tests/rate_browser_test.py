#!/usr/bin/python3
"""End to end, in a real headless Chromium (Debian's chromium + chromium-driver, python3-selenium):
`nd-pipeline up` on a generated Broden with the planted colour model (5 units), then
`nd-pipeline rate`, then two raters answer every unit in each mode through the page (one with the
mouse, one with the keyboard), and the answers file and `nd-pipeline rate --summary` must hold
exactly those answers and the statistics derived by hand below.

Usage: rate_browser_test.py BIN_DIR SOURCE_DIR WORK_DIR [SCREENSHOT.jpg]
Exit 0 on success, 1 on failure, 77 (ctest: skipped) without chromium, chromedriver or selenium.

Hand-derived expectations (5 units, raters_per_unit = 3 (so that units stay open for the load-time
  measurement at the end), names_per_unit = 1, catch_every = 3):
  label check: ann says yes to units 1, 2, 3 and no to 4, 5; bob yes to 1, 2, 4 and no to 3, 5.
    Per unit (yes, no): 1 (2,0), 2 (2,0), 3 (1,1), 4 (1,1), 5 (0,2). Majority yes: units 1, 2 ->
    2 of 5 = 0.4. Fleiss: P_i = 1, 1, 0, 0, 1 -> P = 0.6; p_yes = 6/10, p_no = 4/10 ->
    P_e = 0.52; kappa = 0.08 / 0.48 = 1/6. Krippendorff (nominal): o_yy = 4, o_nn = 2,
    o_yn = o_ny = 2, n_yes = 6, n_no = 4, n = 10 -> alpha = 1 - 9 * 4 / (2 * 6 * 4) = 0.25.
  Each rater sees 7 label trials: trials 3 and 6 are catch trials (catch_every = 3), then all five
    units are done. ann answers no to both catches (2/2), bob yes then no (1/2).
  name: ann names the first 3 units she is given (one name is hostile HTML), bob the other 2.
  human: ann judges bob's 2 names (yes, yes), bob ann's 3 (no to the hostile one, yes, yes):
    consistency 4 of 5 = 0.8; no unit has two judgements, so no agreement statistic.
  With min_catch_accuracy = 0.5 nobody is excluded; with 0.75 bob is (1/2 < 0.75): the label
    check is then ann's alone, 3 of 5 = 0.6, and human consistency is ann's 2 of 2.
"""
import csv
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "testing"))
from browser import SKIP, check, fail, missing_browser, start_chromium  # noqa: E402
from browser import run as run_checked  # noqa: E402

CHILDREN = []  # processes this script started


def wilson(k, n, z=1.959963984540054):
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return c - h, c + h


def run(cmd, **kw):
    return run_checked(cmd, timeout=kw.pop("timeout", 300), **kw)


def main():
    if len(sys.argv) < 4:
        print(__doc__)
        return 2
    bin_dir, src, work = sys.argv[1:4]
    shot = sys.argv[4] if len(sys.argv) > 4 else os.path.join(work, "rate_screenshot.jpg")
    skip = missing_browser()
    if skip:
        print(skip)
        return SKIP
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    run([bin_dir + "/nd-make-broden", "--out", work + "/broden", "--images", "48", "--seed", "11",
         "--size", "224"])
    run(["/usr/bin/python3", src + "/tests/fixtures/make_planted_model.py", work + "/planted.pt"])
    cfg = work + "/pipeline.toml"
    with open(cfg, "w") as f:
        f.write('[dataset]\npath = "broden"\n[model]\npath = "planted.pt"\nlayers = ["detect"]\n'
                'batch_size = 8\n[threshold]\nquantile = 0.05\n[cache]\ndir = "cache"\n'
                '[output]\ndir = "out"\n[run]\ntimeout_s = 60\n'
                '[rate]\nport = 0\nraters_per_unit = 3\nnames_per_unit = 1\n'
                'detectors_only = false\ncatch_every = 3\nmin_catch_accuracy = 0.5\nseed = 7\n')
    run([bin_dir + "/nd-pipeline", "up", "-c", cfg, "--no-report"])
    tally = {}
    with open(work + "/out/detect/tally.csv", newline="") as f:
        for row in csv.DictReader(f):
            tally[int(row["unit"])] = row["label"]
    check(sorted(tally) == [1, 2, 3, 4, 5], "tally units %s" % sorted(tally))

    started = time.monotonic()
    server = subprocess.Popen([bin_dir + "/nd-pipeline", "rate", "-c", cfg],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    CHILDREN.append(server)
    url = None
    log = []
    while url is None:
        line = server.stdout.readline()
        if not line:
            fail("rate server ended: " + "".join(log))
        log.append(line)
        m = re.search(r"serving (http://127\.0\.0\.1:\d+/)", line)
        if m:
            url = m.group(1)
    ready_s = time.monotonic() - started
    print("server ready in %.2f s: %s" % (ready_s, url))

    driver = start_chromium(work + "/profile")
    wait = WebDriverWait(driver, 20, poll_frequency=0.01)
    answered = []  # what the raters did: (rater, unit, mode, phrase, answer, catch)
    try:
        q = lambda sel: driver.find_element(By.CSS_SELECTOR, sel)
        driver.get(url)
        wait.until(lambda d: q("#who").is_displayed())

        def become(name):
            if not q("#who").is_displayed():
                q("#change-rater").click()
            wait.until(lambda d: q("#who").is_displayed())
            box = q("#rater-input")
            box.clear()
            box.send_keys(name)
            q("#rater-start").click()
            wait.until(lambda d: q("#modes").is_displayed())

        def start(mode):
            if not q("#modes").is_displayed():
                q("#menu").click()
            wait.until(lambda d: q("#modes").is_displayed())
            q("#mode-" + mode).click()

        def current():
            """(unit, trial, phrase) of the trial on screen once its tiles loaded; None when done."""
            wait.until(lambda d: q("#done").is_displayed() or (
                q("#trial").is_displayed() and d.execute_script(
                    "return document.body.getAttribute('data-ready')") == "1"))
            if q("#done").is_displayed():
                return None
            t = q("#trial")
            return (int(t.get_attribute("data-unit")), t.get_attribute("data-trial"),
                    q("#phrase").text)

        def after(trial):
            wait.until(lambda d: q("#done").is_displayed() or (
                q("#trial").get_attribute("data-trial") != trial and d.execute_script(
                    "return document.body.getAttribute('data-ready')") == "1"))
            check(q("#status").get_attribute("data-state") in ("recorded", "idle"),
                  "status " + q("#status").get_attribute("data-state"))

        def judge(rater, mode, decide, keyboard):
            """Answers yes/no trials until the page says done; decide(unit, phrase, catch)."""
            catches = 0
            while True:
                c = current()
                if c is None:
                    return
                unit, trial, phrase = c
                is_catch = mode == "label" and phrase != tally[unit]
                catches += is_catch
                ans = decide(unit, phrase, catches if is_catch else 0)
                tiles = driver.find_elements(By.CSS_SELECTOR, "img.tile")
                check(len(tiles) == 15, "%d tiles" % len(tiles))
                if keyboard:
                    q("body").send_keys(ans[0])
                else:
                    q("#" + ans).click()
                answered.append((rater, unit, mode, phrase, ans, is_catch))
                after(trial)

        # Label check.
        become("ann")
        start("label")
        judge("ann", "label", lambda u, p, c: "no" if c else ("yes" if u in (1, 2, 3) else "no"),
              keyboard=False)
        check(q("#done").is_displayed(), "ann: done after the label check")
        driver.save_screenshot(work + "/done.png")
        bob = "bob <b>&"  # a rater name with markup, shown escaped everywhere
        become(bob)
        start("label")
        # A screenshot of the first trial (for people to look at).
        current()
        png = work + "/rate_screenshot.png"
        driver.save_screenshot(png)
        judge(bob, "label", lambda u, p, c: ("yes" if c == 1 else "no") if c else
              ("yes" if u in (1, 2, 4) else "no"), keyboard=True)

        # Name the unit: ann names 3 units, bob the other 2.
        hostile = '<img src=x onerror="document.title=\'pwned\'"> dots & "grid"'
        names = {}
        become("ann")
        start("name")
        for phrase in (hostile, "white blobs", "red things"):
            unit, trial, _ = current()
            if phrase == hostile:
                driver.save_screenshot(work + "/name_mode.png")
            box = q("#name-input")
            box.send_keys(phrase)
            q("#name-submit").click()
            names[unit] = ("ann", phrase)
            answered.append(("ann", unit, "name", phrase, "named", False))
            after(trial)
        become(bob)
        start("name")
        for phrase in ("dark areas", "blue"):
            unit, trial, _ = current()
            q("#name-input").send_keys(phrase + "\n")  # Enter submits
            names[unit] = (bob, phrase)
            answered.append((bob, unit, "name", phrase, "named", False))
            after(trial)
        check(current() is None, "bob: nothing left to name")
        check(sorted(names) == [1, 2, 3, 4, 5], "every unit named once: %s" % sorted(names))

        # Check a human label: each judges the other's names.
        become("ann")
        start("human")
        judge("ann", "human", lambda u, p, c: "yes", keyboard=False)
        become(bob)
        start("human")
        seen_hostile = []

        def bob_decides(unit, phrase, c):
            check(phrase == names[unit][1], "human label of unit %d: %r" % (unit, phrase))
            if phrase == hostile:
                # Shown as text: no element was made from it, no script ran.
                seen_hostile.append(unit)
                check(driver.execute_script(
                    "return document.querySelectorAll('#phrase *').length") == 0,
                      "markup in the phrase became elements")
                check(driver.title != "pwned", "a script in the phrase ran")
                return "no"
            return "yes"

        current()
        driver.save_screenshot(work + "/human_mode.png")
        judge(bob, "human", bob_decides, keyboard=False)
        check(len(seen_hostile) == 1, "bob judged the hostile name once")
        try:
            driver.switch_to.alert
            fail("an alert is open")
        except NoAlertPresentException:
            pass

        # Load times of one unit's page (ask /api/next, then all 15 tiles), from the page itself.
        timings = driver.execute_script("return window.ndTimings.map(function (t) { return t.ms; })")
        full = []
        become("timer")  # a rater who answers nothing: every reload shows the same first unit
        for _ in range(10):
            driver.get(url)
            wait.until(lambda d: q("#modes").is_displayed())
            t0 = driver.execute_script("return performance.now()")
            q("#mode-label").click()
            wait.until(lambda d: q("#done").is_displayed() or d.execute_script(
                "return document.body.getAttribute('data-ready')") == "1")
            nav = driver.execute_script(
                "var n = performance.getEntriesByType('navigation')[0];"
                "return n.loadEventEnd - n.startTime;")
            # The page's load, then the first unit (from asking /api/next to its last tile).
            full.append(nav + driver.execute_script("return window.ndTimings[0].ms"))
    finally:
        driver.quit()

    # Nothing was lost: the server stops cleanly, and the file holds exactly what was answered.
    server.send_signal(signal.SIGTERM)
    rest = server.communicate(timeout=20)[0]
    check(server.returncode == 0, "rate server exit %s: %s" % (server.returncode, rest))
    with open(work + "/out/rate/answers.jsonl") as f:
        lines = f.read().splitlines()
    records = [json.loads(l) for l in lines]
    got = [(r["rater"], r["unit"], r["mode"], r["phrase"], r["answer"], r["catch"])
           for r in records]
    check(len(records) == 24, "24 answers (2x7 label, 5 name, 5 human), got %d" % len(records))
    check(got == answered, "answers file differs from what was answered:\n%s\n%s" %
          ("\n".join(map(str, got)), "\n".join(map(str, answered))))
    check(sum(1 for r in records if r["catch"]) == 4, "4 catch trials")
    real = [(r["rater"], r["mode"], r["unit"]) for r in records if not r["catch"]]
    check(len(real) == len(set(real)), "a rater saw a unit twice in one mode")
    check(all(r["layer"] == "detect" and re.match(r"^\d{4}-\d\d-\d\dT.*Z$", r["time"])
              for r in records), "layer and time of every record")

    # The statistics, as derived by hand in the docstring.
    out = run([bin_dir + "/nd-pipeline", "rate", "--summary", "-c", cfg])
    print(out)
    with open(work + "/out/rate/summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    check(len(rows) == 1, "one layer row")
    s = rows[0]
    near = lambda a, b: abs(float(a) - b) < 5e-6
    lo, hi = wilson(2, 5)
    check(s["label_units_rated"] == "5" and s["label_descriptive"] == "2", str(s))
    check(near(s["label_share"], 0.4) and near(s["label_share_low"], lo) and
          near(s["label_share_high"], hi), "label share and its Wilson interval: %s" % s)
    check(near(s["label_fleiss_kappa"], 1 / 6), "kappa %s" % s["label_fleiss_kappa"])
    check(near(s["label_krippendorff_alpha"], 0.25), "alpha %s" % s["label_krippendorff_alpha"])
    check(s["label_units_2plus"] == "5" and s["label_raters_min"] == "2" and
          s["label_raters_max"] == "2", "raters per unit")
    lo, hi = wilson(4, 5)
    check(s["human_units_rated"] == "5" and s["human_consistent"] == "4" and
          near(s["human_share"], 0.8) and near(s["human_share_low"], lo) and
          near(s["human_share_high"], hi), "human consistency: %s" % s)
    check(s["human_fleiss_kappa"] == "" and s["human_units_2plus"] == "0", "no human agreement")
    check(s["names"] == "5" and s["units_named"] == "5" and s["study_units"] == "5", str(s))
    check(s["raters"] == "2" and s["raters_excluded"] == "0", "nobody excluded at 0.5")
    with open(work + "/out/rate/raters.csv", newline="") as f:
        raters = {r["rater"]: r for r in csv.DictReader(f)}
    check(raters["ann"]["catch_trials"] == "2" and raters["ann"]["catch_correct"] == "2", "ann")
    check(raters[bob]["catch_correct"] == "1" and near(raters[bob]["catch_accuracy"], 0.5), "bob")
    html = open(work + "/out/report/index.html").read()
    check("<h2>Human evaluation</h2>" in html, "report section")
    check("bob &lt;b&gt;&amp;" in html and "bob <b>" not in html, "rater name escaped")

    # A stricter cut-off excludes bob (1/2 < 0.75).
    out = run([bin_dir + "/nd-pipeline", "rate", "--summary", "-c", cfg,
               "--set", "rate.min_catch_accuracy=0.75", "--no-report"])
    print(out)
    with open(work + "/out/rate/summary.csv", newline="") as f:
        s = list(csv.DictReader(f))[0]
    lo, hi = wilson(3, 5)
    check(s["raters_excluded"] == "1" and s["label_descriptive"] == "3" and
          near(s["label_share"], 0.6) and near(s["label_share_low"], lo), "bob excluded: %s" % s)
    check(s["label_fleiss_kappa"] == "" and s["label_units_2plus"] == "0", "one rater left")
    check(s["human_units_rated"] == "2" and s["human_consistent"] == "2", "ann's judgements")
    check("EXCLUDED" in out, "the exclusion is printed")

    # The screenshot, as JPEG.
    try:
        from PIL import Image
        Image.open(png).convert("RGB").save(shot, quality=88)
    except ImportError:
        shutil.copy(png, shot)
    print("screenshot: " + shot)
    print("unit page (next + 15 tiles), in-page, %d units: median %.1f ms, max %.1f ms" %
          (len(timings), statistics.median(timings), max(timings)))
    print("full page load + first unit, %d loads: median %.1f ms, min %.1f, max %.1f" %
          (len(full), statistics.median(full), min(full), max(full)))
    print("PASS")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        # A failed check must not leave the server running.
        for child in CHILDREN:
            if child.poll() is None:
                child.kill()
                child.wait()
