"""Headless Chromium for the browser tests: Debian's chromium and chromedriver, with nothing to reach but 127.0.0.1."""
import contextlib, os, shutil, tempfile

CHROMIUM, CHROMEDRIVER = '/usr/bin/chromium', '/usr/bin/chromedriver'
HOST = '127.0.0.1'
FLAGS = ['--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--window-size=1400,1000', '--disable-gpu',
         '--no-first-run', '--no-default-browser-check', '--disable-extensions', '--disable-sync',
         '--disable-background-networking', '--disable-component-update', '--disable-default-apps',
         '--disable-domain-reliability', '--no-proxy-server', f'--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {HOST}']


@contextlib.contextmanager
def headless_chromium(log: str | None = None, logging_prefs: dict | None = None):
    "A selenium driver of headless Chromium (its driver's log in `log`, the browser's logs as `logging_prefs` ask), quit at the end."
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS: options.add_argument(flag)
    if logging_prefs: options.set_capability('goog:loggingPrefs', logging_prefs)
    scratch = tempfile.mkdtemp(prefix='affine-nb-chromium-')           # short: Chromium puts a unix socket in TMPDIR
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER, log_output=log, env=dict(os.environ, TMPDIR=scratch)), options=options)
        try: yield driver
        finally: driver.quit()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
