"""The website, as a reader's browser gets it.

Builds the site once with the README's docs command (`mkdocs build --strict`, run by this environment's mkdocs) into a
temporary folder, serves it on 127.0.0.1 and opens every page in one headless Chromium. A page fails on: an error in the
browser's console, a request to any host but 127.0.0.1, a link to a page or file that the site does not have, an image
that does not load, or the text of a hidden cell (`#| hide`, in any spelling) of its notebook; and the site fails when a
chapter (nbs/*.ipynb) has no page. The second test plants each of these faults once in a copy of the site and checks
that each is reported, and a third types into the search box and expects the layer's chapter among the results. The
build writes nothing into the checkout but its temporary folder. A last test, without the browser, builds a copy with a
notebook that is not JSON and expects one line that names it.

Needs mkdocs, mkdocs-material and mkdocs-jupyter (the project's dev requirements), selenium, /usr/bin/chromium and
/usr/bin/chromedriver (Debian: chromium, chromium-driver); without them the tests are skipped, unless
AFFINE_NB_BROWSER_TEST=required, which turns the skip into a failure.
"""
import contextlib
import functools
import http.server
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from affine_nb.site import directives, hidden as hidden_cell
from chromium import HOST, headless_chromium, require_browser

ROOT = Path(__file__).resolve().parents[1]
HIDE = re.compile(r'^\s*#\s*\|\s*hide\b', re.M)      # a `#| hide` line (or `# | hide`), as a cell's code would show it


@pytest.fixture(scope='module')
def tools():
    require_browser('the site test', 'mkdocs', 'material', 'mkdocs_jupyter')


def git_status() -> str | None:
    try: return subprocess.run(['git', 'status', '--porcelain'], cwd=ROOT, capture_output=True, text=True,
                               check=True).stdout
    except (OSError, subprocess.CalledProcessError): return None       # not a git checkout


def docs_command(readme: Path = ROOT / 'README.md') -> list[str]:
    "The README's command that builds the site: the line in the code block under `<!-- docs-command -->`."
    lines = readme.read_text().split('<!-- docs-command -->', 1)[-1].strip().splitlines()
    assert len(lines) > 1 and lines[0].startswith('```'), "README.md has no code block under <!-- docs-command -->"
    return shlex.split(lines[1])


@pytest.fixture(scope='module')
def site(tools, tmp_path_factory) -> Path:
    "The site, built once for this module by the README's command, into a temporary folder instead of site/."
    out, before = tmp_path_factory.mktemp('site'), git_status()
    command = docs_command()
    assert command[0] == '.venv/bin/mkdocs' and command[-2:] == ['-d', 'site'], command
    command = [sys.executable, '-m', 'mkdocs', *command[1:-1], str(out)]          # this environment's mkdocs
    build = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600,
                           env=dict(os.environ, PYTHONDONTWRITEBYTECODE='1'))
    assert build.returncode == 0, f"mkdocs build failed:\n{build.stderr[-5000:]}"
    assert git_status() == before, f"the build wrote into the checkout:\n{git_status()}"
    return out


@pytest.fixture(scope='module')
def browser(tools):
    with headless_chromium(logging_prefs={'browser': 'ALL', 'performance': 'ALL'}) as driver:
        driver.set_page_load_timeout(60)
        yield driver


@contextlib.contextmanager
def served(folder: Path):
    "`folder` served over HTTP on a free port of 127.0.0.1: yields the base URL."
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args): pass
    server = http.server.ThreadingHTTPServer((HOST, 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try: yield f'http://{HOST}:{server.server_address[1]}'
    finally: server.shutdown(); server.server_close(); thread.join()


def page_of(notebook: Path) -> str:
    "Where the site puts a notebook's page (the hook's layout: index.ipynb at the top, the chapters under nbs/)."
    return 'index.html' if notebook.stem == 'index' else f'nbs/{notebook.stem}/index.html'


def hidden_lines(notebook: Path) -> list[str]:
    """For each hidden cell (as nbdev reads its directives), the first line of its code that nothing shown of the
    notebook also holds (the line a reader would see if the cell showed), without the cells whose every line is also
    shown elsewhere."""
    cells = json.loads(notebook.read_text())['cells']
    secret = lambda c: c['cell_type'] == 'code' and hidden_cell(directives(''.join(c['source']))[0])
    shown = json.dumps([c for c in cells if not secret(c)])
    found = []
    for cell in filter(secret, cells):
        lines = [line.strip() for line in directives(''.join(cell['source']))[1].splitlines() if line.strip()]
        found += [line for line in lines if json.dumps(line)[1:-1] not in shown][:1]
    return found


# One look at a loaded page: its links (resolved), the images that did not load, and its visible text.
PAGE_JS = """
return {links: [...document.querySelectorAll('a[href]')].map(a => a.href),
        broken: [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.getAttribute('src')),
        text: document.body.innerText};
"""


def load(browser, url: str) -> dict:
    "Open `url`, wait until it is parsed and its images are done (loaded or failed), and take PAGE_JS's look."
    from selenium.webdriver.support.ui import WebDriverWait
    browser.get(url)
    ready = "return document.readyState === 'complete' && [...document.images].every(i => i.complete) && location.href"
    WebDriverWait(browser, 60, poll_frequency=0.1).until(lambda driver: driver.execute_script(ready) == url)
    return browser.execute_script(PAGE_JS)


def site_problems(site: Path, browser, nbs: Path = ROOT / 'nbs', pages: list[str] | None = None) -> list[str]:
    "Everything a reader of `site` would trip over, one line each; every page (or those named) opened in `browser`."
    problems = [f"{nb.name} has no page ({page_of(nb)})" for nb in sorted(nbs.glob('*.ipynb'))
                if not (site / page_of(nb)).is_file()]
    hidden = {page_of(nb): hidden_lines(nb) for nb in nbs.glob('*.ipynb')}
    with served(site) as base:
        for page in pages or sorted(p.relative_to(site).as_posix() for p in site.rglob('*.html')):
            browser.get_log('browser'), browser.get_log('performance')      # what earlier pages left
            seen = load(browser, f'{base}/{page}')
            for entry in browser.get_log('browser'):
                if entry['level'] == 'SEVERE': problems.append(f"{page}: console error: {entry['message'][:300]}")
            for entry in browser.get_log('performance'):
                message = json.loads(entry['message'])['message']
                url = (message['params'].get('request', {}).get('url', '')
                       if message['method'] == 'Network.requestWillBeSent' else '')
                if urlsplit(url).scheme in ('http', 'https', 'ws', 'wss') and urlsplit(url).hostname != HOST:
                    problems.append(f"{page}: a request to another host: {url}")
            for link in sorted(set(seen['links'])):
                parts = urlsplit(link)
                if parts.netloc != urlsplit(base).netloc: continue                # another site: its own business
                target = site / unquote(parts.path).lstrip('/')
                if not (target.is_file() or (target / 'index.html').is_file()):
                    problems.append(f"{page}: a broken link to {parts.path}")
            problems += [f"{page}: a broken image: {src}" for src in seen['broken']]
            text = ' '.join(seen['text'].split())
            if HIDE.search(seen['text']): problems.append(f"{page}: shows a `#| hide` line")
            problems += [f"{page}: shows hidden code: {line}" for line in hidden.get(page, [])
                         if ' '.join(line.split()) in text]
    return problems


def test_every_page_reads_well(site, browser):
    problems = site_problems(site, browser)
    assert not problems, '\n'.join(problems)


def plant(site: Path, page: str, html: str):
    "Add `html` at the end of a page's body."
    path = site / page
    path.write_text(path.read_text().replace('</body>', f'{html}\n</body>'))


def test_the_checks_see_each_fault(site, browser, tmp_path):
    copy = tmp_path / 'site'
    shutil.copytree(site, copy)
    shutil.rmtree(copy / 'nbs' / '01_model')
    plant(copy, 'index.html', '<a href="nbs/no_such_chapter/">gone</a>')
    plant(copy, 'nbs/00_layer/index.html', '<img src="no_such_figure.png">')
    plant(copy, 'nbs/02_data/index.html', "<script>console.error('a planted error')</script>")
    secret = hidden_lines(ROOT / 'nbs' / '03_training.ipynb')[0]
    plant(copy, 'nbs/03_training/index.html', f'<pre>{secret}</pre>')
    plant(copy, 'nbs/04_analysis/index.html', '<pre>#| hide\nx = 1</pre>')
    plant(copy, 'nbs/10_hardware/index.html', '<img src="http://example.com/x.png">')
    planted = ['index.html', *(f'nbs/{name}/index.html'
                               for name in ('00_layer', '02_data', '03_training', '04_analysis', '10_hardware'))]
    problems = site_problems(copy, browser, pages=planted)          # the other pages were checked as built
    expected = {'the missing chapter': "01_model.ipynb has no page (nbs/01_model/index.html)",
                'the broken link': "index.html: a broken link to /nbs/no_such_chapter/",
                'the broken image': "nbs/00_layer/index.html: a broken image: no_such_figure.png",
                'the console error': "nbs/02_data/index.html: console error:",
                'the hidden code': f"nbs/03_training/index.html: shows hidden code: {secret}",
                'the #| hide line': "nbs/04_analysis/index.html: shows a `#| hide` line",
                'the other host': "nbs/10_hardware/index.html: a request to another host: http://example.com/x.png"}
    missed = [what for what, line in expected.items() if not any(p.startswith(line) for p in problems)]
    assert not missed, f"not reported: {missed}; reported:\n" + '\n'.join(problems)
    assert any("a planted error" in p for p in problems if p.startswith('nbs/02_data/'))


def test_search_works_offline(site, browser):
    "The search box finds the layer from any page, with the index and lunr served by the site itself."
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    with served(site) as base:
        load(browser, f'{base}/nbs/03_training/index.html')
        # what clicking the search box does
        browser.execute_script("document.querySelector('#__search').checked = true")
        browser.find_element(By.CSS_SELECTOR, 'input.md-search__input').send_keys('LearnedAffine')
        found = WebDriverWait(browser, 30).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, '.md-search-result__item a'))
        targets = {urlsplit(a.get_attribute('href')).path for a in found}
    assert '/nbs/00_layer/' in targets, targets


def test_a_broken_notebook_is_named_in_one_line(tmp_path):
    "A notebook that is not JSON stops the build with one line that names it, no traceback, and exit status 2."
    pytest.importorskip('mkdocs'), pytest.importorskip('material'), pytest.importorskip('mkdocs_jupyter')
    hook = Path(importlib.util.find_spec('affine_nb.site').origin)            # the hook of the affine_nb on the path
    for path, source in [('mkdocs.yml', ROOT / 'mkdocs.yml'), ('affine_nb/site.py', hook), ('nbs/index.ipynb', None)]:
        (tmp_path / path).parent.mkdir(exist_ok=True)
        shutil.copy(source or ROOT / path, tmp_path / path)
    (tmp_path / 'nbs' / '05_broken.ipynb').write_text('{"cells": [')
    command = [sys.executable, '-m', 'mkdocs', 'build', '--strict', '-d', str(tmp_path / 'site')]
    build = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, PYTHONDONTWRITEBYTECODE='1'))
    output = build.stdout + build.stderr
    said = [line for line in output.splitlines() if '05_broken' in line]
    assert (build.returncode, len(said), 'Traceback' in output) == (2, 1, False), output[-3000:]
    assert said[0].startswith('nbs/05_broken.ipynb is not a notebook (Expecting value: line 1 column 12'), said
