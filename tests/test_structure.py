"""The tutorial reads forward: the module of chapter N imports only modules of earlier chapters, at the top of the file
or inside a function alike, no cell of chapter N's notebook (exported or not) imports a later chapter's module, and no
two modules import each other, directly or around a circle. Part I is the five chapters of the card (numbered 0x),
read in one sitting; Part II is numbered 1x and the appendix 2x. No two modules export the same name.

Each chapter's number and module come from the notebooks themselves (`nbs/NN_name.ipynb` and its `#| default_exp`),
and each module's imports from its source, parsed, never run.
"""
import ast, json, math, re, statistics
from pathlib import Path

from chapter_runner import EXERCISE

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = 'affine_nb'

# Imports of a later chapter that are still to be removed, each with the one it should become. An entry that no longer
# matches an import fails the test too, so the list can only shrink.
STILL_BACKWARD: dict[tuple[str, str], str] = {}


def numbered(nbs: Path = ROOT / 'nbs') -> list[Path]:
    "Every chapter's notebook, in reading order."
    return sorted(nbs.glob('[0-9][0-9]_*.ipynb'))


def chapters(nbs: Path = ROOT / 'nbs') -> dict[str, tuple[int, str]]:
    "module name -> (chapter number, notebook name), from every numbered notebook's `#| default_exp`."
    found = {}
    for nb in numbered(nbs):
        sources = [''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code']
        names = [m for s in sources for m in re.findall(r'^#\|\s*default_exp\s+(\S+)', s, re.M)]
        assert len(names) == 1, f"{nb.name} must name its module once with #| default_exp, found {names}"
        found[names[0]] = (int(nb.name[:2]), nb.name)
    return found


def imported_modules(path: Path) -> set[str]:
    "The package's modules that `path` imports, wherever the import statement is."
    return modules_in(ast.parse(path.read_text()))


def modules_in(tree: ast.AST) -> set[str]:
    "The package's modules that a parsed source imports, in any form and at any depth."
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level == 1: base = f"{PACKAGE}.{base}" if base else PACKAGE
            if base == PACKAGE: found |= {alias.name for alias in node.names}
            elif base.startswith(f"{PACKAGE}."): found.add(base.split('.')[1])
        elif isinstance(node, ast.Import):
            found |= {alias.name.split('.')[1] for alias in node.names if alias.name.startswith(f"{PACKAGE}.")}
    return found


def import_graph() -> dict[str, set[str]]:
    modules = chapters()
    return {name: imported_modules(ROOT / PACKAGE / f"{name}.py") & set(modules) - {name} for name in modules}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    "Every circle of imports, once each, as the list of modules around it."
    found, seen = [], set()
    def walk(path):
        for nxt in sorted(graph[path[-1]]):
            if nxt == path[0]:
                key = frozenset(path)
                if key not in seen: seen.add(key); found.append(path + [nxt])
            elif nxt not in path and nxt > path[0]: walk(path + [nxt])     # each circle from its smallest name only
    for start in sorted(graph): walk([start])
    return found


def test_every_module_has_a_numbered_chapter():
    modules = {p.stem for p in (ROOT / PACKAGE).glob('*.py')} - {'__init__', '_modidx'}
    assert modules == set(chapters()), f"modules without a chapter: {sorted(modules - set(chapters()))}"
    owners = {}
    for nb in numbered():
        for _, source in cell_sources(nb):
            for name in re.findall(r'^#\|\s*default_exp\s+(\S+)', source, re.M):
                owners.setdefault(name, []).append(nb.name)
    twice = {name: nbs for name, nbs in owners.items() if len(nbs) > 1}
    assert not twice, f"modules exported by more than one chapter: {twice}"


def test_chapters_import_only_earlier_chapters():
    modules, graph = chapters(), import_graph()
    backward = {(a, b) for a, targets in graph.items() for b in targets if modules[b][0] >= modules[a][0]}
    new = [f"{PACKAGE}.{a} ({modules[a][1]}) imports {PACKAGE}.{b} ({modules[b][1]}), a later chapter"
           for a, b in sorted(backward - set(STILL_BACKWARD))]
    assert not new, '\n'.join(new)
    gone = sorted(set(STILL_BACKWARD) - backward)
    assert not gone, f"no longer imported, so remove from STILL_BACKWARD: {gone}"


def test_no_circular_imports():
    found = cycles(import_graph())
    assert not found, '\n'.join(' -> '.join(f"{PACKAGE}.{m}" for m in circle) for circle in found)


def test_the_checks_see_what_they_look_for(tmp_path):
    "The parser finds imports at any depth, in every form; the cycle finder finds a circle and nothing else."
    source = tmp_path / 'm.py'
    source.write_text("import torch\nfrom .layer import affine\nimport affine_nb.data as d\n"
                      "def f():\n    from affine_nb import extending\n    from affine_nb.model import make_model\n")
    assert imported_modules(source) == {'layer', 'data', 'extending', 'model'}
    assert cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [['a', 'b', 'c', 'a']]
    assert cycles({'a': {'b'}, 'b': set()}) == []


def cell_sources(nb_path: Path) -> list[tuple[int, str]]:
    "(cell index, source) of every code cell of a notebook."
    cells = json.loads(nb_path.read_text())['cells']
    return [(i, ''.join(c['source'])) for i, c in enumerate(cells) if c['cell_type'] == 'code']


def python_of(source: str) -> str:
    "A cell's source as Python: each line of an IPython magic (`%...`) or shell escape (`!...`) becomes `pass`."
    return '\n'.join(line[:len(line) - len(line.lstrip())] + 'pass' if line.lstrip().startswith(('%', '!')) else line
                     for line in source.splitlines())


def cell_imports(nb_path: Path) -> tuple[list[tuple[int, str]], list[str]]:
    """(cell index, module) for every import of a package module in the notebook's code cells, and the cells that
    could not be read. Lines of IPython magics (`%...`) and shell escapes (`!...`) are left out; a cell magic (`%%...`)
    may hold another language, so only such a cell may fail to parse."""
    found, unreadable = [], []
    for i, source in cell_sources(nb_path):
        try: tree = ast.parse(python_of(source))
        except SyntaxError as e:
            if not source.lstrip().startswith('%%'):
                unreadable.append(f"{nb_path.name} cell {i}: {e.msg} (line {e.lineno})")
            continue
        found += [(i, module) for module in sorted(modules_in(tree))]
    return found, unreadable


def later_chapters_used(nbs: Path = ROOT / 'nbs') -> list[str]:
    "Every notebook cell of chapter N that imports the module of a chapter numbered above N, and every unreadable cell."
    modules, problems = chapters(nbs), []
    for nb in numbered(nbs):
        found, unreadable = cell_imports(nb)
        problems += unreadable
        problems += [f"{nb.name} cell {i} imports {PACKAGE}.{module}, from the later chapter {modules[module][1]}"
                     for i, module in found if module in modules and modules[module][0] > int(nb.name[:2])]
    return problems


def test_no_cell_uses_a_later_chapter():
    problems = later_chapters_used()
    assert not problems, '\n'.join(problems)


def notebook(path: Path, *sources: str) -> Path:
    "A notebook of code cells (and a markdown cell for each source that starts with '#md ') for the checks' own tests."
    cells = [dict(cell_type='markdown', source=s[4:]) if s.startswith('#md ')
             else dict(cell_type='code', source=s, outputs=[]) for s in sources]
    path.write_text(json.dumps(dict(cells=cells)))
    return path


def test_the_cell_check_can_fail(tmp_path):
    "A chapter whose cells import a later chapter's module in each form is caught; magics and shell lines are skipped."
    notebook(tmp_path / '00_first.ipynb', '#| default_exp first', '%matplotlib inline\nfrom affine_nb.second import f',
             'import affine_nb.third as t\n!ls', 'def g():\n    from affine_nb import second', '%%bash\necho ok',
             'from affine_nb.first import g')
    notebook(tmp_path / '01_second.ipynb', '#| default_exp second', 'from affine_nb.first import g')
    notebook(tmp_path / '02_third.ipynb', '#| default_exp third', 'x = (')
    found = later_chapters_used(tmp_path)
    assert found == ['00_first.ipynb cell 1 imports affine_nb.second, from the later chapter 01_second.ipynb',
                     '00_first.ipynb cell 2 imports affine_nb.third, from the later chapter 02_third.ipynb',
                     '00_first.ipynb cell 3 imports affine_nb.second, from the later chapter 01_second.ipynb',
                     "02_third.ipynb cell 1: '(' was never closed (line 1)"], found


FINISHED_BAR = re.compile(r'^[^|]*: 100%\|[^|]*\| (\d+)/\1 ')     # a progress bar's last state: all it prints on stderr


def committed_output_problems(nb_path: Path) -> list[str]:
    """What a reader should not see in a chapter's committed outputs: errors, warnings on stderr, raw dicts, a paragraph
    twice."""
    problems, seen = [], set()
    for i, cell in enumerate(json.loads(nb_path.read_text())['cells']):
        for out in cell.get('outputs', []):
            text = ''.join(out.get('text', ''))
            if out['output_type'] == 'error': problems.append(f"cell {i}: an error, {out.get('ename')}")
            if (out['output_type'] == 'stream' and out.get('name') == 'stderr'
                    and not all(FINISHED_BAR.match(line) for line in text.splitlines() if line.strip())):
                problems.append(f"cell {i}: stderr: {text[:80]!r}")
            for line in text.splitlines():
                if re.match(r"^[\w.]*\s*\{'", line): problems.append(f"cell {i}: a raw dict: {line[:80]!r}")
                if len(line) > 100 and line in seen: problems.append(f"cell {i}: printed twice: {line[:80]!r}")
                seen.add(line)
    return problems


def test_committed_outputs_are_clean():
    problems = {nb.name: p for nb in sorted((ROOT / 'nbs').glob('*.ipynb')) if (p := committed_output_problems(nb))}
    assert not problems, '\n'.join(f"{name}: {p}" for name, found in problems.items() for p in found)


def test_the_output_check_sees_what_it_looks_for(tmp_path):
    paragraph = ('a sentence long enough to be a paragraph that a reader would notice if it were printed twice in one '
                 'chapter')
    outputs = [dict(output_type='stream', name='stderr',
                    text='epoch 1/2: 100%|████| 79/79 [00:00<00:00, 123.12batch/s]\n'),
               dict(output_type='stream', name='stderr',
                    text='epoch 1/2:  50%|██  | 40/79 [00:00<00:00]\nW1130 a warning\n'),
               dict(output_type='stream', name='stdout', text=f"conv {{'shape': [16]}}\n{paragraph}\n{paragraph}\n"),
               dict(output_type='error', ename='ValueError', evalue='', traceback=[])]
    nb = tmp_path / 'x.ipynb'
    nb.write_text(json.dumps(dict(cells=[dict(cell_type='code', source='', outputs=outputs)])))
    found = committed_output_problems(nb)
    assert [p.split(':')[1].strip() for p in found] == ['stderr', 'a raw dict', 'printed twice',
                                                        'an error, ValueError'], found


# Limits that keep the chapters readable, checked on the committed notebooks and modules. Teaching chapters are those
# before the appendix of the machinery (numbered 20 and up).
APPENDIX = 20
LIMITS = {'longest code cell': 30, 'median code cell': 6, 'longest markdown cell (words)': 150, 'module lines': 300}


def measures() -> dict[tuple[str, str], float]:
    "(chapter or module, what) -> the measured value, for every limit that applies to it."
    found = {}
    for nb in numbered():
        cells = json.loads(nb.read_text())['cells']
        code = [c for c in cells if c['cell_type'] == 'code' and ''.join(c['source']).strip()]
        lines = sorted(len(''.join(c['source']).splitlines()) for c in code)
        found[nb.stem, 'longest code cell'] = lines[-1]
        if int(nb.stem[:2]) < APPENDIX: found[nb.stem, 'median code cell'] = statistics.median(lines)
        found[nb.stem, 'longest markdown cell (words)'] = max(len(''.join(c['source']).split())
                                                              for c in cells if c['cell_type'] == 'markdown')
    for module in sorted((ROOT / PACKAGE).glob('*.py')):
        if module.stem not in ('__init__', '_modidx'):
            found[module.name, 'module lines'] = len(module.read_text().splitlines())
    return found


def over(what: str, value: float, limit: float) -> bool:
    return value > limit


def test_chapters_and_modules_within_their_limits():
    problems = [f"{name}: {what} {value}, the limit is {LIMITS[what]}" for (name, what), value in measures().items()
                if over(what, value, LIMITS[what])]
    assert not problems, '\n'.join(problems)


def test_the_limits_can_fail():
    assert over('longest code cell', 31, 30) and not over('longest code cell', 30, 30)
    assert set(LIMITS) == {what for _, what in measures()}


def table_of_contents() -> list[str]:
    """The chapters that the README's tables of chapters link to, in order, from `nbs/index.ipynb` (README.md is made
    from it)."""
    cells = json.loads((ROOT / 'nbs' / 'index.ipynb').read_text())['cells']
    return re.findall(r'^\| \[(\w+)\]\(\.\./nbs/(\w+)\.ipynb\)', ''.join(cells[0]['source']), re.M)


def test_the_readme_lists_every_chapter_once_in_order():
    listed = table_of_contents()
    assert all(name == target for name, target in listed), [pair for pair in listed if pair[0] != pair[1]]
    assert [name for name, _ in listed] == [nb.stem for nb in numbered()]


# The three parts, by the tens digit of a chapter's number: Part I (the card's five chapters, read in one sitting),
# Part II (chapters that go further) and the appendix (the machinery, from APPENDIX on).
PART_I = ['00_layer', '01_model', '02_data', '03_training', '04_analysis']
PARTS = {0: 'Part I', 1: 'Part II', APPENDIX // 10: 'appendix'}


def test_the_parts():
    names = [nb.stem for nb in numbered()]
    assert [n for n in names if int(n[:2]) // 10 == 0] == PART_I
    assert all(int(n[:2]) // 10 in PARTS for n in names), [n for n in names if int(n[:2]) // 10 not in PARTS]
    assert any(int(n[:2]) // 10 == 1 for n in names) and any(int(n[:2]) >= APPENDIX for n in names)


# Part I reads in one sitting: a minute for every 200 words of prose or 10 lines of code, hidden cells included, where
# a code line counts once for every 80 characters begun (a packed line of 120 reads as two), and the lines of a code
# block inside the prose (an exercise's code) count as code, not as words.
READING_BUDGET = 90
LINE_WIDTH = 80
FENCE = re.compile(r'^[ \t]*```[^\n]*\n(.*?)^[ \t]*```[^\n]*$', re.M | re.S)    # a code block; its lines


def code_units(source: str) -> int:
    "A code line's reading cost: one for every LINE_WIDTH characters begun; blank lines cost nothing."
    return sum(math.ceil(len(line) / LINE_WIDTH) for line in source.splitlines() if line.strip())


def reading_minutes(nb_path: Path) -> float:
    "How long a chapter takes to read: words of prose / 200 + code units / 10, hidden cells and code in prose included."
    words = units = 0
    for cell in json.loads(nb_path.read_text())['cells']:
        source = ''.join(cell['source'])
        if cell['cell_type'] == 'code': units += code_units(source)
        elif cell['cell_type'] == 'markdown':
            units += sum(code_units(block) for block in FENCE.findall(source))
            words += len(FENCE.sub(' ', source).split())
    return words / 200 + units / 10


def part_one_minutes(nbs: Path = ROOT / 'nbs') -> dict[str, float]:
    return {name: reading_minutes(nbs / f"{name}.ipynb") for name in PART_I if (nbs / f"{name}.ipynb").exists()}


def test_part_one_reads_in_one_sitting():
    minutes = part_one_minutes()
    assert sum(minutes.values()) <= READING_BUDGET, (f"Part I takes {sum(minutes.values()):.1f} minutes to read, the "
                                                     f"budget is {READING_BUDGET}: "
                                                     + ', '.join(f"{n} {m:.1f}" for n, m in minutes.items()))


def test_the_reading_time_can_fail(tmp_path):
    """Words and nonblank lines of every cell count, hidden ones too; a line counts once per 80 characters begun; code
    in prose counts as code; a Part I over the budget is over, and one planted long line can put it over."""
    nb = notebook(tmp_path / '00_layer.ipynb', '#md ' + 'word ' * 297, '#| hide\nimport torch\n\n  \nx = 1',
                  'y = 2\n' * 17, 'z = ' + '1' * 77 + '\nw = ' + '1' * 76,
                  '#md Try:\n\n```python\nprint(1)\n\n' + 'q = 3 ' * 20 + '\n```\nthen look')
    assert reading_minutes(nb) == (297 + 3) / 200 + (20 + 2 + 1 + 1 + 2) / 10
    notebook(tmp_path / '01_model.ipynb', '#md ' + 'word ' * 200 * READING_BUDGET)
    assert sum(part_one_minutes(tmp_path).values()) > READING_BUDGET
    (tmp_path / '01_model.ipynb').unlink()
    at_budget = READING_BUDGET - reading_minutes(nb)
    notebook(tmp_path / '01_model.ipynb', 'x = 1\n' * round(at_budget * 10))
    assert sum(part_one_minutes(tmp_path).values()) <= READING_BUDGET + 1e-9
    notebook(tmp_path / '01_model.ipynb', 'x = 1\n' * (round(at_budget * 10) - 1) + 'x = "' + 'a' * 100 + '"')
    assert sum(part_one_minutes(tmp_path).values()) > READING_BUDGET


def test_the_readme_reading_times_are_current():
    "The minutes the README's chapter tables give are the chapters' reading times, rounded, give or take a minute."
    cells = json.loads((ROOT / 'nbs' / 'index.ipynb').read_text())['cells']
    rows = re.findall(r'^\| \[\w+\]\(\.\./nbs/(\w+)\.ipynb\) \| [^|]*\| ([^|]*) \|', ''.join(cells[0]['source']), re.M)
    stale = [f"{name}: the README says {listed.strip()}, it reads in "
             f"{reading_minutes(ROOT / 'nbs' / f'{name}.ipynb'):.1f}"
             for name, listed in rows if (ROOT / 'nbs' / f'{name}.ipynb').exists()
             and not (listed.strip().isdigit()
                      and abs(int(listed) - reading_minutes(ROOT / 'nbs' / f'{name}.ipynb')) <= 1)]
    assert rows and not stale, '\n'.join(stale) or 'no reading times in the tables'


# A reader finds the way: every chapter opens saying what it needs and what it teaches, each Part I chapter ends with
# two or three exercises under "Try it", each with its code, a chapter named in prose ("the data chapter", "a later
# chapter") or design.md is a link, and the index teaches first: at most INDEX_WORDS words before its first chapter
# table.
INDEX_WORDS = 800
CHAPTER_MENTION = re.compile(r"\b(?:the|next|previous) [\w-]+ chapter\b|\blater chapters?\b|\bdesign\.md\b", re.I)


def markdown_cells(nb_path: Path) -> list[str]:
    return [''.join(c['source']) for c in json.loads(nb_path.read_text())['cells'] if c['cell_type'] == 'markdown']


def wayfinding_problems(nbs: Path = ROOT / 'nbs') -> list[str]:
    problems = []
    for nb in numbered(nbs):
        cells = markdown_cells(nb)
        opening = cells[0].lower() if cells else ''
        if 'needs' not in opening or 'teaches' not in opening:
            problems.append(f"{nb.name} does not open with what it needs and teaches")
        if nb.stem in PART_I:
            last = cells[-1] if cells else ''
            exercises = EXERCISE.findall(last)      # each with its code, which the chapter's test runs
            if 'Try it' not in last or not 2 <= len(exercises) <= 3:
                problems.append(f"{nb.name} does not end with two or three Try it exercises")
    for nb in numbered(nbs) + [nbs / 'index.ipynb']:
        for text in markdown_cells(nb):
            text = re.sub(r'\]\([^)]*\)', ']', text)           # a link's target is not a mention
            for m in CHAPTER_MENTION.finditer(text):
                before = text[:m.start()]              # a mention inside [...] is a link's text
                if before.rfind('[') <= before.rfind(']'): problems.append(f"{nb.name}: '{m.group(0)}' is not a link")
    index = ''.join(markdown_cells(nbs / 'index.ipynb')[:1])
    words = len(index[:index.find('\n|')].split()) if '\n|' in index else len(index.split())
    if words > INDEX_WORDS:
        problems.append(f"the index has {words} words before its first chapter table, more than {INDEX_WORDS}")
    return problems


def test_a_reader_finds_the_way():
    problems = wayfinding_problems()
    assert not problems, '\n'.join(problems)


def test_the_way_check_can_fail(tmp_path):
    notebook(tmp_path / '00_layer.ipynb', '#md # Layer\n\n*Needs* nothing. *Teaches* the layer, like the data chapter.',
             '#md ## Try it\n\n**1.** one, [design.md](../design.md)\n```python\nx = 1\n```\n'
             '**2.** two, see design.md\n```python\ny = 2\n```')
    notebook(tmp_path / '01_model.ipynb', '#md # Model\n\n*Needs* [the layer chapter](00_layer.ipynb).',
             '#md ## Try it\n\n1. one')
    notebook(tmp_path / 'index.ipynb', '#md ' + 'word ' * (INDEX_WORDS + 1) + '\n| chapter |')
    assert wayfinding_problems(tmp_path) == ["01_model.ipynb does not open with what it needs and teaches",
                                             "01_model.ipynb does not end with two or three Try it exercises",
                                             "00_layer.ipynb: 'the data chapter' is not a link",
                                             "00_layer.ipynb: 'design.md' is not a link",
                                             f"the index has {INDEX_WORDS + 1} words before its first chapter table, "
                                             f"more than {INDEX_WORDS}"]


def exported_names(package: Path = ROOT / PACKAGE) -> dict[str, list[str]]:
    "name -> the modules whose `__all__` lists it."
    found = {}
    for module in sorted(package.glob('*.py')):
        for node in ast.parse(module.read_text()).body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == '__all__'
                                                    for t in node.targets):
                for name in ast.literal_eval(node.value): found.setdefault(name, []).append(module.stem)
    return found


def clashes(package: Path = ROOT / PACKAGE) -> list[str]:
    return [f"{name} is exported by {', '.join(modules)}" for name, modules in exported_names(package).items()
            if len(modules) > 1]


def test_no_two_modules_export_the_same_name():
    found = clashes()
    assert not found, '\n'.join(found)


def test_the_name_check_can_fail(tmp_path):
    (tmp_path / 'a.py').write_text("__all__ = ['TOLERANCE', 'fit']\nTOLERANCE = fit = 1\n")
    (tmp_path / 'b.py').write_text("__all__ = ['TOLERANCE', 'other']\n")
    (tmp_path / 'c.py').write_text("x = 1\n")
    assert clashes(tmp_path) == ['TOLERANCE is exported by a, b']


# The website drops hidden cells (`#| hide`): a visible cell may use no name that only a hidden cell binds (imports,
# defines or assigns), except fastcore.test's checks, which nbdev's chapters hide by custom, and IPython's `display`.
SHOWN_ANYWAY = {'test_eq', 'test_ne', 'test_close', 'test_fail', 'test_is', 'test_stdout', 'test_warns', 'display'}


def names_of(source: str) -> tuple[set[str], set[str]]:
    "(names a cell binds, names it reads), magics and shell lines left out; a cell that does not parse gives neither."
    try: tree = ast.parse(python_of(source))
    except SyntaxError: return set(), set()
    bound, read = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound |= {(alias.asname or alias.name).split('.')[0] for alias in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)): bound.add(node.name)
        elif isinstance(node, ast.arg): bound.add(node.arg)                   # a parameter, of a def or a lambda
        elif isinstance(node, ast.ExceptHandler) and node.name: bound.add(node.name)
        elif isinstance(node, ast.Name): (bound if isinstance(node.ctx, ast.Store) else read).add(node.id)
    return bound, read


def hidden_names_shown(nb_path: Path) -> list[str]:
    "'cell N uses NAME' for each name a visible cell reads that only hidden cells above it bind."
    hidden, visible, found = set(), set(), []
    for i, source in cell_sources(nb_path):
        bound, read = names_of(source)
        if re.search(r'^#\|\s*hide\s*$', source, re.M): hidden |= bound; continue
        found += [f"cell {i} uses {name}" for name in sorted(read & hidden - visible - bound - SHOWN_ANYWAY)]
        visible |= bound
    return found


def test_no_visible_cell_needs_a_hidden_one():
    found = [f"{nb.name}: {problem}, which only a hidden cell binds" for nb in numbered()
             for problem in hidden_names_shown(nb)]
    assert not found, '\n'.join(found)


def test_the_hidden_name_check_can_fail(tmp_path):
    nb = notebook(tmp_path / '00_a.ipynb', '#| hide\nimport json\nfrom fastcore.test import test_eq\nsecret = 1',
                  'test_eq(json.dumps(secret), "1")', 'import json\njson.dumps(2)',
                  '%matplotlib inline\nf = lambda secret: secret\nprint(secret)')
    assert hidden_names_shown(nb) == ['cell 1 uses json', 'cell 1 uses secret']
