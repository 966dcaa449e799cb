"""Which cells a reader sees: one reader of nbdev's cell directives, as nbdev reads them.

`affine_nb.site.directives` is held to nbdev 2's own parser (`nbdev.process.extract_directives`) on a table of
spellings and on random ones, and its verdicts to what nbdev's docs and Quarto do with a cell (nbdev's `hide_`
processor, Quarto's YAML for `include:`, `echo:`, `output:`). The site and the README (both made by `affine_nb.site`)
show exactly the cells that nbdev would, and no other module reads directives on its own.
"""
import ast
import os
import random
import re
from pathlib import Path

import nbformat
import yaml
from execnb.nbio import mk_cell, new_nb
from nbdev.process import NBProcessor, extract_directives, first_code_ln
from nbdev.processors import hide_

from affine_nb import site

PACKAGE = Path(site.__file__).parent

# A cell's source, and what a reader of the docs sees of it: 'nothing', 'outputs' (no code), 'code' (no outputs), 'all'.
SPELLINGS = [
    ('#| hide\nx = 1', 'nothing'), ('#|hide\nx = 1', 'nothing'), ('# | hide\nx = 1', 'nothing'),
    ('#|  hide\nx = 1', 'nothing'), ('#|\thide\nx = 1', 'nothing'), ('\n#| hide\nx = 1', 'nothing'),
    ('\n \n  #| hide\nx = 1', 'nothing'), ('#| hide:\nx = 1', 'nothing'), ('#| export\n#| hide\nx = 1', 'nothing'),
    ('#| export\n\n#|hide\nx = 1', 'nothing'), ('%%time\n#| hide\nx = 1', 'nothing'),
    ('#| hide\r\nx = 1\r\n', 'nothing'), ('#| include: false\nx = 1', 'nothing'),
    ('#| include: False\nx = 1', 'nothing'), ('#| include: FALSE\nx = 1', 'nothing'),
    ('#|include:false\nx = 1', 'nothing'), ('# | include: false\nx = 1', 'nothing'),
    ('#| include: true\nx = 1', 'all'), ('#| hide: true\nx = 1', 'all'), ('x = 1\n#| hide', 'all'),
    ('x = 1  #| hide', 'all'), ('#| hidden\nx = 1', 'all'), ('## | hide\nx = 1', 'all'),
    ('#| echo: false\nx = 1', 'outputs'), ('#| echo: False\nx = 1', 'outputs'), ('#|echo:false\nx = 1', 'outputs'),
    ('\n# | echo: FALSE\nx = 1', 'outputs'), ('#| echo: true\nx = 1', 'all'), ('#| output: false\nx = 1', 'code'),
    ('#| output: False\nx = 1', 'code'), ('#| eval: false\nx = 1', 'all'),
    ('#| eval: False\n#| echo: false\nx = 1', 'outputs'), ('#| label: fig-x\n#| fig-cap: "a: b"\nx = 1', 'all'),
    ('#| export\nx = 1', 'all'), ('#| exports\nx = 1', 'all'), ('#| default_exp site\nx = 1', 'all'),
    ('#|\nx = 1', 'all'), ('#| slow\nx = 1', 'all'), ('%%time\nx = 1', 'all'),
]


def nbdev_reads(source: str) -> tuple[dict, str | None]:
    "nbdev's directives of a code cell, and its code below them (None for a cell that has no line of code)."
    lines = source.splitlines(keepends=True)
    first = first_code_ln(lines)
    magics = [line for line in lines[:first] if line.lstrip().startswith('%%')]
    code = None if first is None else ''.join(magics + lines[first:])
    return extract_directives(mk_cell(source), remove=False), code


def nbdev_shows(source: str) -> str:
    "What nbdev's docs show of a cell: nbdev's `hide_` processor, then the Quarto options it leaves, read as YAML."
    if not NBProcessor(nb=new_nb([mk_cell(source)]), procs=[hide_], process=True).nb.cells: return 'nothing'
    cell = mk_cell(source)
    extract_directives(cell)                         # nbdev drops its own directives and keeps Quarto's, first
    options = []
    for line in cell.source.splitlines(keepends=True):
        if not re.match(r'\s*#\s*\|', line): break
        options.append(re.sub(r'^\s*#\s*\|', '', line))
    quarto = yaml.safe_load(''.join(options)) or {}
    return view(quarto.get('include') is False, quarto.get('echo') is not False, quarto.get('output') is not False)


def view(hidden: bool, code: bool, outputs: bool) -> str:
    "The table's word for what a reader sees of a cell."
    if hidden or not (code or outputs): return 'nothing'
    return 'all' if code and outputs else 'code' if code else 'outputs'


def reader_shows(module, source: str) -> str:
    found = module.directives(source)[0]
    return view(module.hidden(found), not module.is_false(found, 'echo'), not module.is_false(found, 'output'))


def agrees(source: str) -> bool:
    found, code = site.directives(source)
    nbdev_found, nbdev_code = nbdev_reads(source)
    return found == nbdev_found and (nbdev_code is None or code == nbdev_code)


def test_the_table_is_what_nbdev_does():
    "The oracle first: nbdev and Quarto do with each spelling what the table says."
    wrong = [(source, expected, seen) for source, expected in SPELLINGS if (seen := nbdev_shows(source)) != expected]
    assert not wrong, wrong


def test_the_reader_parses_as_nbdev_does():
    wrong = [(source, site.directives(source), nbdev_reads(source)) for source, _ in SPELLINGS if not agrees(source)]
    assert not wrong, '\n'.join(map(repr, wrong))


def test_the_reader_agrees_on_random_spellings():
    seed = int(os.environ.get('DIRECTIVES_SEED', random.randrange(2**32)))
    print(f"seed {seed} (DIRECTIVES_SEED={seed} repeats it)")
    rng = random.Random(seed)
    parts = ['#', '|', ' ', '\t', ':', 'hide', 'echo', 'false', 'False', 'x = 1', '%%time', '-', '\n', '\n', '\r\n']
    sources = [''.join(rng.choices(parts, k=rng.randrange(1, 14))) for _ in range(400)]
    wrong = [(source, site.directives(source), nbdev_reads(source)) for source in sources if not agrees(source)]
    assert not wrong, f"seed {seed}:\n" + '\n'.join(map(repr, wrong[:10]))


def test_the_reader_shows_what_nbdev_shows():
    wrong = [(source, expected, reader_shows(site, source)) for source, expected in SPELLINGS
             if reader_shows(site, source) != expected]
    assert not wrong, wrong


def notebook(sources: list[str]) -> dict:
    "A notebook with one code cell per source, each with the output `out N`."
    cells = [nbformat.v4.new_code_cell(source, outputs=[nbformat.v4.new_output('stream', text=f'out {i}\n')])
             for i, source in enumerate(sources)]
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell('# Home'), *cells])


def marked(source: str, i: int) -> str:
    "`source` with its code made `mark_N = N`, so that a page shows which cell it is."
    return source.replace('x = 1', f'mark_{i} = {i}')


def test_the_site_shows_what_nbdev_shows():
    sources = [marked(source, i) for i, (source, _) in enumerate(SPELLINGS)]
    cells = [c for c in site.process_nb(notebook(sources))['cells'] if c['cell_type'] == 'code']
    wrong = []
    for i, (source, expected) in enumerate(SPELLINGS):
        cell = next((c for c in cells if re.search(fr'\bmark_{i} = ', c['source'])), None)
        tags = cell['metadata']['tags'] if cell else []
        seen = view(cell is None, 'remove_input' not in tags, 'remove_output' not in tags)
        directive = cell is not None and re.match(r'\s*#\s*\|', cell['source'])     # a directive line left in the code
        if seen != expected or directive: wrong.append((source, expected, seen, cell))
    assert not wrong, '\n'.join(map(repr, wrong))


def test_the_readme_shows_what_nbdev_shows(tmp_path):
    sources = [marked(source, i) for i, (source, _) in enumerate(SPELLINGS)]
    (tmp_path / 'nbs').mkdir()
    nbformat.write(notebook(sources), tmp_path / 'nbs' / 'index.ipynb')
    page = site.readme(tmp_path, {})
    wrong = [(source, expected) for i, (source, expected) in enumerate(SPELLINGS)
             if (re.search(fr'\bmark_{i} = ', page) is not None) != (expected in ('all', 'code'))]
    assert not wrong, f"{wrong}\n{page}"
    blocks = re.findall(r'```\w*\n(.*?)```', page, re.S)
    assert len(blocks) == sum(expected in ('all', 'code') for _, expected in SPELLINGS), page
    assert not [b for b in blocks if re.match(r'\s*#\s*\|', b)], "the README shows a directive line"


def test_no_module_reads_directives_on_its_own():
    "A string that spells a directive's `#|`, or a pattern for it, is only in the reader, `site.directives`."
    found = []
    for path in sorted(PACKAGE.glob('*.py')):
        tree = ast.parse(path.read_text())
        documented = [n for n in ast.walk(tree) if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef))]
        docstrings = {id(n.body[0].value) for n in documented if isinstance(n.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings \
                    and re.search(r'#(\\s\*)?\\?\|', node.value):
                found.append((path.name, node.value))
    reader = r'\s*#\s*\|'
    assert found == [('site.py', reader)], found
