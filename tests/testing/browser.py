"""What the headless-Chromium tests share (tests/rate_browser_test.py, tests/study_browser_test.py):
the failure helpers, running a command, and starting Debian's chromium through chromedriver and
python3-selenium. Exit code 77 is ctest's "skipped"."""
import os
import subprocess
import sys

SKIP = 77
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def check(cond, msg):
    if not cond:
        fail(msg)


def run(cmd, timeout=120, **kw):
    """Runs cmd; its output, or FAIL with the output when it exits non-zero."""
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=timeout, **kw)
    if r.returncode != 0:
        fail("%s -> %d\n%s" % (" ".join(cmd), r.returncode, r.stdout))
    return r.stdout


def missing_browser():
    """The SKIP line when chromium, chromedriver or selenium is missing, else None."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        return "SKIP: needs /usr/bin/chromium and /usr/bin/chromedriver (chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "SKIP: needs python3-selenium"
    return None


def start_chromium(profile_dir, extra_args=(), browser_log=False):
    """A headless Chromium driver (1280x1000, no network services, its profile in profile_dir)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,1000", "--user-data-dir=" + profile_dir,
              "--disable-background-networking", "--disable-component-update",
              "--no-first-run"] + list(extra_args):
        opts.add_argument(a)
    if browser_log:
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
