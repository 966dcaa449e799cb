"""The speedrun presets' committed reference runs, retrained: a fresh `affine-train --portable --preset NAME` of seed 42
gives the committed weights bit for bit.

Each run trains a whole preset (seconds for `speedrun-4s`, under a minute for `speedrun`, about five minutes for
`speedrun-5min`), so this test runs only when AFFINE_NB_REFERENCE_TEST is set; `.ci/run` runs it for the two short
presets in a step of its own, and `-k speedrun-5min` picks the long one.
"""
import json, os, subprocess, sys
from pathlib import Path

import pytest

from affine_nb.config import RunConfig
from affine_nb.ladder import REFERENCES
from affine_nb.repro import portable_env

RESULTS = Path(__file__).parents[1] / 'results' / 'speedrun'
pytestmark = pytest.mark.skipif(not os.environ.get('AFFINE_NB_REFERENCE_TEST'),
                                reason="trains whole presets: set AFFINE_NB_REFERENCE_TEST=1")


@pytest.mark.parametrize('preset', list(REFERENCES))
def test_a_fresh_portable_run_gives_the_committed_weights(preset, tmp_path):
    committed = json.loads((RESULTS / f"{preset}-seed42" / 'metrics.json').read_text())
    env = portable_env() | {'TORCHINDUCTOR_CACHE_DIR': str(tmp_path / 'inductor')}     # a kernel cache of its own
    subprocess.run([str(Path(sys.executable).parent / 'affine-train'), '--portable', '--quiet', '--preset', preset,
                    '--out', str(tmp_path / 'run')], env=env, check=True, capture_output=True)
    fresh = json.loads((tmp_path / 'run' / 'metrics.json').read_text())
    assert RunConfig.from_dict(fresh['config']) == RunConfig.from_dict(committed['config'])
    assert fresh['weights_sha256'] == committed['weights_sha256'], (preset, fresh['test_acc'], committed['test_acc'])
