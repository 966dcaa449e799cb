"""A chapter's test: its cells, then the code of each exercise under its closing "Try it", in order, after its last
cell and in its namespace, as a reader would type them in. The root conftest.py makes each chapter one such test."""
import json, os, re, sys
from pathlib import Path

from execnb.nbio import mk_cell, read_nb
from execnb.shell import CaptureShell
from fastcore.xtras import working_directory
from nbdev.process import NBProcessor
from nbdev.processors import FrontmatterProc

EXERCISE = re.compile(r'^```python\n(.*?)^```$', re.M | re.S)


def exercises(path: Path) -> list[str]:
    "The code of every exercise in the chapter's closing markdown cell, when that cell is its 'Try it', in order."
    cells = [''.join(c['source']) for c in json.loads(path.read_text())['cells'] if c['cell_type'] == 'markdown']
    return EXERCISE.findall(cells[-1]) if cells and '## Try it' in cells[-1] else []


def run_chapter(path: Path, skip_flags=(), force_flags=()) -> bool:
    """Run a chapter's cells, then its exercises, as `nbdev.test.test_nb` runs a notebook (in its folder, skipping
    cells flagged with `skip_flags` unless in `force_flags`); True when no cell raised. A failing cell and its
    traceback are printed on standard error."""
    os.environ['IN_TEST'] = '1'
    nb = read_nb(path)
    nb.cells += [mk_cell(code) for code in exercises(path)]
    nb = NBProcessor(nb=nb, procs=FrontmatterProc, process=True).nb
    flags = set(skip_flags) - set(force_flags)
    def skipped(cell):
        directives = getattr(cell, 'directives_', {}) or {}
        return (cell.cell_type != 'code' or directives.get('eval:', [''])[0].lower() == 'false'
                or bool(flags & directives.keys()))
    shell = CaptureShell(path)
    try:
        with working_directory(path.parent): shell.run_all(nb, exc_stop=True, preproc=skipped)
        return True
    except Exception:
        sys.stderr.write(shell.prettytb(fname=path) + '\n')
        return False
