"""The test command runs each chapter once: a chapter with widgets that the browser test runs cell by cell (in a real
kernel, failing on any error) is skipped as a chapter test, and only then. Collected in a real pytest process, with a
plugin that prints which items will run."""
import os, subprocess, sys
from pathlib import Path

import pytest

from chromium import missing_tools

ROOT = Path(__file__).parent.parent
PLUGIN = '''
def pytest_collection_finish(session):
    for item in session.items: print('SKIP' if item.get_closest_marker('skip') else 'RUN', item.nodeid)
'''


def test_a_chapter_the_browser_test_runs_is_skipped_and_no_other(tmp_path):
    if missing := missing_tools('jupyterlab'): pytest.skip(f"the browser test cannot run here ({', '.join(missing)})")
    (tmp_path / 'which_run.py').write_text(PLUGIN)
    browser = 'tests/test_widgets_browser.py::test_widgets_respond_to_sliders[nbs/04_analysis.ipynb]'
    collected = subprocess.run([sys.executable, '-m', 'pytest', '--co', '-q', '-p', 'which_run', 'nbs/04_analysis.ipynb',
                                'nbs/17_probe.ipynb', browser], cwd=ROOT, capture_output=True, text=True, timeout=120,
                               env=dict(os.environ, PYTHONPATH=str(tmp_path)))
    said = dict(reversed(line.split(' ', 1)) for line in collected.stdout.splitlines() if line.startswith(('SKIP', 'RUN')))
    assert said == {'nbs/04_analysis.ipynb::04_analysis': 'SKIP', 'nbs/17_probe.ipynb::17_probe': 'RUN',
                    browser: 'RUN'}, collected.stdout + collected.stderr
