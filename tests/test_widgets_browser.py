"""The chapters' widgets, used as a person uses them: in JupyterLab, in a real browser.

For each notebook with widgets (the probe chapter's: γ and β on one image, and sliders on the trained network),
starts JupyterLab on 127.0.0.1 over this checkout, opens the notebook in headless Chromium, runs all cells, and waits
for its `interactive` widgets (found by their slider labels, not by cell position). Then, for each of its sliders,
it presses the arrow key on the slider's handle and checks that the slider's value and the figure below the sliders
both change. No cell may end in an error, and the page may never say "Error displaying
widget" or "Model not found". On a failure a screenshot is saved and its path printed.

Needs /usr/bin/chromium, /usr/bin/chromedriver (Debian: chromium, chromium-driver) and the selenium package; without
them the test is skipped, unless AFFINE_NB_BROWSER_TEST=required, which turns the skip into a failure.
Nothing in the checkout is written: JupyterLab's settings, workspaces, checkpoints and runtime files live in a
temporary folder, and autosave is off there. The kernel gets matplotlib's default (inline) backend even where
MPLBACKEND is set, since under Agg a displayed Figure is only text; only 127.0.0.1 is used.
"""
import hashlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from chromium import HOST, headless_chromium, missing_tools, require_browser

ROOT = Path(__file__).resolve().parents[1]
WIDGETS = {'nbs/19_probe.ipynb': ['gamma', 'beta',                      # image_widget
                                  'gamma_scale', 'beta_shift']}         # probe_widget
BAD_TEXT = ['Error displaying widget', 'Model not found']
RUN_TIMEOUT = 300          # s: run all cells until the widget shows a figure
STEP_TIMEOUT = 20          # s: one slider move until its figure is redrawn
STEP_TRIES = 3             # arrow presses per slider before giving up


MODULES = ('jupyterlab',)     # besides Chromium, its driver and selenium


def runs_here() -> bool:
    """Whether this test can run here, and so runs the chapters of WIDGETS cell by cell (conftest.py skips their own
    run)."""
    return not missing_tools(*MODULES)


@pytest.fixture(scope='module')
def tools():
    require_browser('the widget test', *MODULES)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def write_json(path: Path, data: dict):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def api(port: int, token: str, path: str, method: str = 'GET') -> bytes:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))      # loopback only, never a proxy
    request = urllib.request.Request(f'http://{HOST}:{port}{path}', method=method,
                                     headers={'Authorization': f'token {token}'})
    with opener.open(request, timeout=10) as response:
        return response.read()


@pytest.fixture(scope='module', params=list(WIDGETS))
def lab(tools, tmp_path_factory, request):
    """JupyterLab over the checkout on a free port of 127.0.0.1, with its own settings (no autosave, no news), for one
    notebook; yields (notebook, url, log)."""
    home = tmp_path_factory.mktemp('jupyter')
    settings = home / 'user-settings' / '@jupyterlab'
    write_json(settings / 'docmanager-extension' / 'plugin.jupyterlab-settings', {'autosave': False})
    write_json(settings / 'apputils-extension' / 'notification.jupyterlab-settings',
               {'checkForUpdates': False, 'fetchNews': 'false'})
    port, token, log = free_port(), secrets.token_hex(16), home / 'jupyterlab.log'
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / 'config'), JUPYTER_DATA_DIR=str(home / 'data'),
               JUPYTER_RUNTIME_DIR=str(home / 'runtime'), IPYTHONDIR=str(home / 'ipython'), PYTHONUNBUFFERED='1')
    # the kernel's inline backend, as for a person: under Agg a Figure displays as text only
    env.pop('MPLBACKEND', None)
    command = [sys.executable, '-m', 'jupyterlab', '--no-browser', f'--ip={HOST}', f'--port={port}', '--port-retries=0',
               f'--IdentityProvider.token={token}', '--ServerApp.allow_root=True', f'--ServerApp.root_dir={ROOT}',
               '--LabApp.expose_app_in_browser=True',              # window.jupyterapp, to run all cells and read states
               f'--LabApp.user_settings_dir={home / "user-settings"}', f'--LabApp.workspaces_dir={home / "workspaces"}',
               f'--FileCheckpoints.checkpoint_dir={home / "checkpoints"}', '--LabApp.extension_manager=readonly',
               '--LabApp.news_url=None',
               '--LabApp.check_for_updates_class=jupyterlab.handlers.announcements.NeverCheckForUpdate']
    with open(log, 'wb') as out:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while True:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited with {server.returncode}:\n{log.read_text()[-3000:]}", pytrace=False)
            try:
                api(port, token, '/api/status')
                break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer on {HOST}:{port} in 90 s:\n{log.read_text()[-3000:]}",
                                pytrace=False)
                time.sleep(0.5)
        yield request.param, f'http://{HOST}:{port}/lab/tree/{request.param}?token={token}', log
    finally:
        if server.poll() is None:
            try: api(port, token, '/api/shutdown', 'POST')        # shuts the kernels down too
            except (urllib.error.URLError, OSError): pass
            try: server.wait(30)
            except subprocess.TimeoutExpired:
                server.terminate()
                try: server.wait(10)
                except subprocess.TimeoutExpired: server.kill(); server.wait()


@pytest.fixture(scope='module')
def browser(tools, tmp_path_factory):
    with headless_chromium(log=str(tmp_path_factory.mktemp('chromedriver') / 'chromedriver.log')) as driver:
        yield driver


# One look at the page: the kernel's state, cell errors, the forbidden texts, and for each slider label its value and
# the figure (the <img> in the output of the same `interactive`).
STATE_JS = r"""
const [path, names, badText] = arguments;
const state = {kernel: null, busyCells: 0, errors: [], bad: [], sliders: {}};
const app = window.jupyterapp;
const panel = app && app.shell.currentWidget;
if (panel && panel.context && panel.context.path === path && panel.sessionContext) {
  const session = panel.sessionContext.session;
  state.kernel = session && session.kernel ? panel.sessionContext.kernelDisplayStatus : 'no kernel';
  panel.content.widgets.forEach((cell, i) => {
    if (cell.model.type !== 'code') return;
    for (const output of cell.model.outputs.toJSON()) if (output.output_type === 'error')
      state.errors.push(`cell ${i + 1} (${cell.model.sharedModel.getSource().split('\n')[0]}): ` +
                        `${output.ename}: ${output.evalue}`);
  });
}
for (const prompt of document.querySelectorAll('.jp-InputPrompt'))
  if (prompt.textContent.includes('*')) state.busyCells++;
// a widget's output shows an exception as stderr text (the mime type of stderr streams too, hence the pattern)
for (const el of document.querySelectorAll('.widget-output [data-mime-type="application/vnd.jupyter.stderr"]'))
  if (/Traceback|^\s*[\w.]*(Error|Exception)\b/m.test(el.textContent))
    state.errors.push('a widget shows:\n' + el.textContent.slice(-1500));
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);   // innerText would skip offscreen cells
let text = '';
while (walker.nextNode())
  if (!['SCRIPT', 'STYLE'].includes(walker.currentNode.parentNode.nodeName)) text += walker.currentNode.data + ' ';
text = text.toLowerCase();
state.bad = badText.filter(t => text.includes(t.toLowerCase()));
for (const label of document.querySelectorAll('.widget-slider .widget-label')) {
  const name = label.textContent.trim();
  if (!names.includes(name) || name in state.sliders) continue;
  const slider = label.closest('.widget-slider'), box = label.closest('.widget-interact');
  const img = box && box.querySelector('.widget-output img');
  const readout = slider.querySelector('.widget-readout');
  state.sliders[name] = {value: readout ? readout.textContent.trim() : null, src: img ? img.getAttribute('src') : null};
}
return state;
"""

HANDLE_JS = """
for (const label of document.querySelectorAll('.widget-slider .widget-label'))
  if (label.textContent.trim() === arguments[0]) {
    const handle = label.closest('.widget-slider').querySelector('.noUi-handle');
    label.closest('.widget-interact').scrollIntoView({block: 'center'});
    return handle;
  }
return null;
"""


def describe(src: str | None) -> str:
    "A figure's `src`, short: its kind, size and a hash."
    if not src: return 'none'
    return f"{src.split(',', 1)[0]}, {len(src)} chars, sha1 {hashlib.sha1(src.encode()).hexdigest()[:10]}"


def test_widgets_respond_to_sliders(lab, browser):
    notebook, url, log = lab
    sliders = WIDGETS[notebook]
    from selenium.webdriver.common.keys import Keys

    def state():
        s = browser.execute_script(STATE_JS, notebook, sliders, BAD_TEXT)
        assert not s['errors'], "a cell or a widget shows an error:\n" + '\n---\n'.join(s['errors'])
        assert not s['bad'], f"the page says {s['bad']}"
        return s

    def wait_for(what: str, ready, timeout: float, every: float = 0.25):
        deadline = time.monotonic() + timeout
        while True:
            s = state()
            if ready(s): return s
            if time.monotonic() > deadline:
                summary = {k: v if k != 'sliders' else {n: dict(value=x['value'], figure=describe(x['src']))
                                                        for n, x in v.items()} for k, v in s.items()}
                pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; last state {summary}", pytrace=False)
            time.sleep(every)

    try:
        browser.get(url)
        wait_for('the notebook and an idle kernel', lambda s: s['kernel'] == 'idle', 120)
        browser.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells');")
        start = time.monotonic()
        wait_for('the widget with its figure after running all cells',
                 lambda s: s['kernel'] == 'idle' and s['busyCells'] == 0 and
                           all((s['sliders'].get(n, {}).get('src') or '').startswith('data:image/png')
                               for n in sliders),
                 RUN_TIMEOUT, every=1)
        print(f"all cells ran in {time.monotonic() - start:.0f} s")
        for name in sliders:
            before = state()['sliders'][name]
            handle = browser.execute_script(HANDLE_JS, name)
            assert handle is not None and handle.is_displayed(), f"the handle of slider {name!r} is not visible"

            def moved(s):
                now = s['sliders'].get(name, {})
                return (s['kernel'] == 'idle' and now.get('value') != before['value'] and
                        (now.get('src') or '').startswith('data:image/png') and now['src'] != before['src'])

            for attempt in range(STEP_TRIES):
                handle.send_keys(Keys.ARROW_RIGHT)
                try:
                    after = wait_for(f"slider {name!r} to move and redraw its figure", moved, STEP_TIMEOUT)
                    break
                except pytest.fail.Exception:
                    if attempt == STEP_TRIES - 1: raise
            now = after['sliders'][name]
            print(f"{name}: {before['value']} -> {now['value']}, "
                  f"figure {describe(before['src'])} -> {describe(now['src'])}")
            assert now['value'] != before['value'] and now['src'] != before['src']
    except BaseException:
        folder = Path(tempfile.mkdtemp(prefix='affine-nb-browser-'))
        try:
            browser.save_screenshot(str(folder / 'screenshot.png'))
            (folder / 'page.txt').write_text(browser.execute_script('return document.body.innerText'))
        except Exception as e:
            print(f"no screenshot: {e}")
        shutil.copy(log, folder / 'jupyterlab.log')
        print(f"screenshot, page text and JupyterLab's log of the failure: {folder}")
        raise
