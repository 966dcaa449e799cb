"""ruff, as the README's test command runs it before any test: `ruff check .` from the root of the checkout, with the
project's ruff.toml (lines of at most 120 characters, no unused import, no undefined name; the package, the notebooks,
the tests and the benchmark alike). These tests check that the command runs it first and fails with it, that the
version it runs is the pinned one, and that the check can fail: a project planted with each fault, checked by ruff
with this checkout's ruff.toml, reports each one, and a line of exactly 120 characters passes.

Needs the `ruff` program (a dev requirement), next to this interpreter or on PATH.
"""
import json, os, re, shutil, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def ruff() -> str:
    found = shutil.which('ruff', path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get('PATH', '')]))
    if found is None: pytest.fail("the lint test needs ruff: pip install -c constraints.txt -e '.[dev]'", pytrace=False)
    return found


def findings(project: Path) -> list[str]:
    "ruff's findings on `project`, checked as the README's command checks the checkout: `ruff check .` from its root."
    done = subprocess.run([ruff(), 'check', '--no-cache', '--output-format', 'concise', '.'], cwd=project,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode in (0, 1), f"ruff failed with status {done.returncode}:\n{done.stderr}"
    found = [line for line in done.stdout.splitlines() if re.match(r'\S+:(cell \d+:)?\d+:\d+: [A-Z]+\d+ ', line)]
    assert (done.returncode == 1) == bool(found), done.stdout          # it fails exactly when it finds something
    return found


def readme_test_command() -> str:
    "The README's test command: the line under `<!-- test-command -->` in nbs/index.ipynb (README.md is made from it)."
    cells = json.loads((ROOT / 'nbs' / 'index.ipynb').read_text())['cells']
    text = ''.join(''.join(c['source']) for c in cells if c['cell_type'] == 'markdown')
    lines = text.split('<!-- test-command -->', 1)[-1].strip().splitlines()
    assert len(lines) > 1 and lines[0].startswith('```'), \
        "nbs/index.ipynb has no code block under <!-- test-command -->"
    return lines[1]


def test_the_test_command_runs_ruff_first():
    "`ruff check .` runs before pytest, and its failure fails the command (`&&`); ruff is pinned where pytest is."
    command = readme_test_command()
    assert command.startswith('.venv/bin/ruff check . && .venv/bin/pytest'), command
    settings = (ROOT / 'settings.ini').read_text()
    dev = re.search(r'^dev_requirements\s*=(.*)$', settings, re.M)[1].split()
    pinned = [line for line in (ROOT / 'constraints.txt').read_text().splitlines() if line.startswith('ruff==')]
    assert len(pinned) == 1 and pinned[0] in dev, (pinned, dev)
    version = subprocess.run([ruff(), '--version'], capture_output=True, text=True, check=True).stdout.split()[-1]
    assert pinned[0] == f'ruff=={version}', f"{ruff()} is ruff {version}; constraints.txt pins {pinned[0]}"


def line_of(length: int) -> str:
    "A line of Python of exactly `length` characters."
    return "x = '" + 'a' * (length - 6) + "'"


def notebook(source: str) -> str:
    return json.dumps(dict(cells=[dict(cell_type='code', source=source, metadata={}, outputs=[], execution_count=None)],
                           metadata={}, nbformat=4, nbformat_minor=5))


def test_the_lint_can_fail(tmp_path):
    "Each rule, in a module and in a notebook, is reported where it is broken; 120 characters pass, 121 do not."
    shutil.copy(ROOT / 'ruff.toml', tmp_path / 'ruff.toml')
    assert len(line_of(120)) == 120
    (tmp_path / 'ok.py').write_text(f"import os\n\n{line_of(120)}\nprint(os.sep, x)\n")
    (tmp_path / 'ok.ipynb').write_text(notebook(line_of(120)))
    assert findings(tmp_path) == []

    (tmp_path / 'long.py').write_text(f"{line_of(121)}\n")
    (tmp_path / 'nbs').mkdir()
    (tmp_path / 'nbs' / 'long.ipynb').write_text(notebook(f"y = 1\n{line_of(121)}"))
    (tmp_path / 'unused.py').write_text("import os\n")
    (tmp_path / 'undefined.py').write_text("print(undefined_name)\n")
    found = findings(tmp_path)
    expected = ['long.py:1:121: E501', 'nbs/long.ipynb:cell 1:2:121: E501', 'unused.py:1:8: F401',
                'undefined.py:1:7: F821']
    missed = [where for where in expected if not any(line.startswith(where) for line in found)]
    assert not missed and len(found) == len(expected), f"not reported: {missed}; reported:\n" + '\n'.join(found)
