"""Headless Chromium for the browser tests: Debian's chromium and chromedriver, with nothing to reach but 127.0.0.1."""
import contextlib, importlib.util, os, shutil, tempfile

import pytest

CHROMIUM, CHROMEDRIVER = '/usr/bin/chromium', '/usr/bin/chromedriver'
HOST = '127.0.0.1'
FLAGS = ['--headless=new', '--no-sandbox', '--disable-dev-shm-usage', '--window-size=1400,1000', '--disable-gpu',
         '--no-first-run', '--no-default-browser-check', '--disable-extensions', '--disable-sync',
         '--disable-background-networking', '--disable-component-update', '--disable-default-apps',
         '--disable-domain-reliability', '--no-proxy-server', f'--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE {HOST}']


def missing_tools(*modules: str) -> list[str]:
    "What a browser test lacks here: Chromium, its driver, selenium or one of `modules`."
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    return missing + [name for name in ('selenium', *modules) if importlib.util.find_spec(name) is None]


def require_browser(test: str, *modules: str) -> None:
    """Skip `test` without Chromium, its driver, selenium or one of `modules`; fail instead when
    AFFINE_NB_BROWSER_TEST=required."""
    missing = missing_tools(*modules)
    if not missing: return
    message = (f"{test} needs {', '.join(missing)} (apt-get install chromium chromium-driver; "
               f"pip install -c constraints.txt -e '.[dev]')")
    if os.environ.get('AFFINE_NB_BROWSER_TEST') == 'required':
        pytest.fail(f"AFFINE_NB_BROWSER_TEST=required, but {message}", pytrace=False)
    pytest.skip(message)


@contextlib.contextmanager
def headless_chromium(log: str | None = None, logging_prefs: dict | None = None):
    """A selenium driver of headless Chromium (its driver's log in `log`, the browser's logs as `logging_prefs` ask),
    quit at the end."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS: options.add_argument(flag)
    if logging_prefs: options.set_capability('goog:loggingPrefs', logging_prefs)
    scratch = tempfile.mkdtemp(prefix='affine-nb-chromium-')           # short: Chromium puts a unix socket in TMPDIR
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER, log_output=log, env=dict(os.environ, TMPDIR=scratch)),
                                  options=options)
        try: yield driver
        finally: driver.quit()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
