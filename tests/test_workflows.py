"""The GitHub workflows in .github/workflows/, checked by actionlint: the syntax, the expressions and their contexts,
the inputs of the actions used, and (where shellcheck is on PATH) the shell of every `run:` step. Any finding fails.

Needs the `actionlint` program, next to this interpreter or on PATH; without it the tests are skipped, unless
AFFINE_NB_ACTIONLINT_TEST=required, which turns the skip into a failure.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / '.github' / 'workflows'


@pytest.fixture(scope='module')
def actionlint() -> str:
    found = shutil.which('actionlint',
                         path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get('PATH', '')]))
    if found is None:
        message = ("the workflow check needs the actionlint program (https://github.com/rhysd/actionlint) next to "
                   "python or on PATH")
        if os.environ.get('AFFINE_NB_ACTIONLINT_TEST') == 'required':
            pytest.fail(f"AFFINE_NB_ACTIONLINT_TEST=required, but {message}", pytrace=False)
        pytest.skip(message)
    return found


def findings(actionlint: str, *workflows: Path) -> list[str]:
    "actionlint's findings on the workflow files, one line each."
    result = subprocess.run([actionlint, '-no-color', '-oneline', *map(str, workflows)], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode in (0, 1), f"actionlint failed with status {result.returncode}:\n{result.stderr}"
    return result.stdout.splitlines()


def test_the_workflows_pass_actionlint(actionlint):
    workflows = sorted(WORKFLOWS.glob('*.y*ml'))
    assert {p.name for p in workflows} >= {'test.yaml', 'deploy.yaml'}, workflows
    found = findings(actionlint, *workflows)
    assert not found, '\n'.join(found)


def test_the_check_can_fail(actionlint, tmp_path):
    "A workflow with a job that needs a job that is not there, a misspelled input and an undefined context is refused."
    broken = tmp_path / 'broken.yaml'
    broken.write_text("""on: push
jobs:
  test:
    runs-on: ubuntu-latest
    needs: build
    steps:
      - uses: actions/checkout@v5
        with:
          fetch-dpeth: 1
      - run: echo "${{ matrix.python }}"
""")
    found = '\n'.join(findings(actionlint, broken))
    for what in ('needs job "build"', 'input "fetch-dpeth" is not defined', 'property "python" is not defined'):
        assert what in found, f"{what!r} not reported:\n{found}"
