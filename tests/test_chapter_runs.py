"""The test command runs each chapter once: a chapter with widgets that the browser test runs cell by cell (in a real
kernel, failing on any error) is skipped as a chapter test, and only then. Collected in a real pytest process, with a
plugin that prints which items will run.

The first test asks this machine whether the browser test can run; the second tells the collection that it can, or
that it cannot, so that what conftest.py looks for (the browser test by its name, parametrized or not, its module's
`runs_here` and `WIDGETS`, the chapters named there) is checked on every machine, with or without a browser.
"""
import os, subprocess, sys
from pathlib import Path

import pytest

from chromium import missing_tools

ROOT = Path(__file__).parent.parent
PLUGIN = '''
import os, pytest

@pytest.hookimpl(tryfirst=True)                 # before conftest.py asks whether the browser test can run
def pytest_collection_modifyitems(items):
    if (can_run := os.environ.get('WHICH_RUN_CAN_RUN')) is None: return
    for item in items:
        if hasattr(getattr(item, 'module', None), 'runs_here'): item.module.runs_here = lambda: can_run == '1'

def pytest_collection_finish(session):
    for item in session.items: print('SKIP' if item.get_closest_marker('skip') else 'RUN', item.nodeid)
'''
BROWSER = 'tests/test_widgets_browser.py::test_widgets_respond_to_sliders'
CHAPTERS = {'nbs/19_probe.ipynb::19_probe'}


def which_run(tmp_path: Path, *paths: str, can_run: bool | None = None) -> tuple[dict, str]:
    """{node id: 'RUN' or 'SKIP'} for the items that `pytest --co PATHS` collects, with the browser test able to run
    as this machine says (`can_run` None) or as `can_run` says; and what pytest printed."""
    (tmp_path / 'which_run.py').write_text(PLUGIN)
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    if can_run is not None: env['WHICH_RUN_CAN_RUN'] = '1' if can_run else '0'
    collected = subprocess.run([sys.executable, '-m', 'pytest', '--co', '-q', '-p', 'which_run', *paths], cwd=ROOT,
                               capture_output=True, text=True, timeout=120, env=env)
    said = dict(reversed(line.split(' ', 1)) for line in collected.stdout.splitlines()
                if line.startswith(('SKIP', 'RUN')))
    return said, collected.stdout + collected.stderr


def test_a_chapter_the_browser_test_runs_is_skipped_and_no_other(tmp_path):
    if missing := missing_tools('jupyterlab'): pytest.skip(f"the browser test cannot run here ({', '.join(missing)})")
    browser = f'{BROWSER}[nbs/19_probe.ipynb]'
    said, printed = which_run(tmp_path, 'nbs/04_analysis.ipynb', 'nbs/19_probe.ipynb', browser)
    assert said == {'nbs/04_analysis.ipynb::04_analysis': 'RUN', 'nbs/19_probe.ipynb::19_probe': 'SKIP',
                    browser: 'RUN'}, printed


@pytest.mark.parametrize('can_run', [True, False], ids=['browser', 'no browser'])
def test_the_names_conftest_looks_for_are_there(tmp_path, can_run):
    """Each chapter of the browser test is skipped where that test can run, and runs where it cannot: conftest.py finds
    the (parametrized) browser test, its module's `runs_here` and `WIDGETS`, and the chapters WIDGETS names."""
    said, printed = which_run(tmp_path, 'nbs/04_analysis.ipynb', 'nbs/19_probe.ipynb', 'tests/test_widgets_browser.py',
                              can_run=can_run)
    browsers = {f'{BROWSER}[nbs/19_probe.ipynb]'}
    assert said == ({name: 'SKIP' if can_run else 'RUN' for name in CHAPTERS} | dict.fromkeys(browsers, 'RUN')
                    | {'nbs/04_analysis.ipynb::04_analysis': 'RUN'}), printed


def test_a_chapter_the_browser_test_runs_has_no_exercises():
    "Its own test, which would run its exercises after its cells, is skipped where the browser test runs it."
    from chapter_runner import exercises
    from test_widgets_browser import WIDGETS
    assert {path: exercises(ROOT / path) for path in WIDGETS} == dict.fromkeys(WIDGETS, [])
