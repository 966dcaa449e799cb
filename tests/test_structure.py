"""The tutorial reads forward: the module of chapter N imports only modules of earlier chapters, at the top of the file
or inside a function alike, and no two modules import each other, directly or around a circle.

Each chapter's number and module come from the notebooks themselves (`nbs/NN_name.ipynb` and its `#| default_exp`),
and each module's imports from its source, parsed, never run.
"""
import ast, json, re, statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = 'affine_nb'

# Imports of a later chapter that are still to be removed, each with the one it should become. An entry that no longer
# matches an import fails the test too, so the list can only shrink.
STILL_BACKWARD: dict[tuple[str, str], str] = {}


def chapters() -> dict[str, tuple[int, str]]:
    "module name -> (chapter number, notebook name), from every numbered notebook's `#| default_exp`."
    found = {}
    for nb in sorted((ROOT / 'nbs').glob('[0-9][0-9]_*.ipynb')):
        sources = [''.join(c['source']) for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code']
        names = [m for s in sources for m in re.findall(r'^#\|\s*default_exp\s+(\S+)', s, re.M)]
        assert len(names) == 1, f"{nb.name} must name its module once with #| default_exp, found {names}"
        found[names[0]] = (int(nb.name[:2]), nb.name)
    return found


def imported_modules(path: Path) -> set[str]:
    "The package's modules that `path` imports, wherever the import statement is."
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
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


def committed_output_problems(nb_path: Path) -> list[str]:
    "What a reader should not see in a chapter's committed outputs: errors, warnings on stderr, raw dicts, a paragraph twice."
    problems, seen = [], set()
    for i, cell in enumerate(json.loads(nb_path.read_text())['cells']):
        for out in cell.get('outputs', []):
            text = ''.join(out.get('text', ''))
            if out['output_type'] == 'error': problems.append(f"cell {i}: an error, {out.get('ename')}")
            if out['output_type'] == 'stream' and out.get('name') == 'stderr': problems.append(f"cell {i}: stderr: {text[:80]!r}")
            for line in text.splitlines():
                if re.match(r"^[\w.]*\s*\{'", line): problems.append(f"cell {i}: a raw dict: {line[:80]!r}")
                if len(line) > 100 and line in seen: problems.append(f"cell {i}: printed twice: {line[:80]!r}")
                seen.add(line)
    return problems


def test_committed_outputs_are_clean():
    problems = {nb.name: p for nb in sorted((ROOT / 'nbs').glob('*.ipynb')) if (p := committed_output_problems(nb))}
    assert not problems, '\n'.join(f"{name}: {p}" for name, found in problems.items() for p in found)


def test_the_output_check_sees_what_it_looks_for(tmp_path):
    paragraph = 'a sentence long enough to be a paragraph that a reader would notice if it were printed twice in one chapter'
    outputs = [dict(output_type='stream', name='stderr', text='W1130 a warning\n'),
               dict(output_type='stream', name='stdout', text=f"conv {{'shape': [16]}}\n{paragraph}\n{paragraph}\n"),
               dict(output_type='error', ename='ValueError', evalue='', traceback=[])]
    nb = tmp_path / 'x.ipynb'
    nb.write_text(json.dumps(dict(cells=[dict(cell_type='code', source='', outputs=outputs)])))
    found = committed_output_problems(nb)
    assert [p.split(':')[1].strip() for p in found] == ['stderr', 'a raw dict', 'printed twice', 'an error, ValueError'], found


# Limits that keep the chapters readable, checked on the committed notebooks and modules. Teaching chapters are those
# before the appendix of the machinery (numbered 10 and up).
APPENDIX = 14
LIMITS = {'share of code cells with output': round(1 / 3, 3), 'longest code cell': 30, 'median code cell': 6,
          'longest markdown cell (words)': 150, 'module lines': 220}
# Where a chapter or module is still over a limit: its measured value, which may not grow. A value that falls to the
# limit, or below the number here, fails the test until the number is lowered or the entry removed, so the list can
# only shrink.
STILL_OVER = {}


def measures() -> dict[tuple[str, str], float]:
    "(chapter or module, what) -> the measured value, for every limit that applies to it."
    found = {}
    for nb in sorted((ROOT / 'nbs').glob('[0-9][0-9]_*.ipynb')):
        cells = json.loads(nb.read_text())['cells']
        code = [c for c in cells if c['cell_type'] == 'code' and ''.join(c['source']).strip()]
        lines = sorted(len(''.join(c['source']).splitlines()) for c in code)
        found[nb.stem, 'share of code cells with output'] = round(sum(bool(c.get('outputs')) for c in code) / len(code), 3)
        found[nb.stem, 'longest code cell'] = lines[-1]
        if int(nb.stem[:2]) < APPENDIX: found[nb.stem, 'median code cell'] = statistics.median(lines)
        found[nb.stem, 'longest markdown cell (words)'] = max(len(''.join(c['source']).split()) for c in cells if c['cell_type'] == 'markdown')
    for module in sorted((ROOT / PACKAGE).glob('*.py')):
        if module.stem not in ('__init__', '_modidx'): found[module.name, 'module lines'] = len(module.read_text().splitlines())
    return found


def over(what: str, value: float, limit: float) -> bool:
    return value < limit if what == 'share of code cells with output' else value > limit


def test_chapters_and_modules_within_their_limits():
    found, problems = measures(), []
    for (name, what), value in found.items():
        allowed = STILL_OVER.get((name, what), LIMITS[what])
        if over(what, value, allowed): problems.append(f"{name}: {what} {value}, the limit is {allowed}")
        elif (name, what) in STILL_OVER and value != allowed:
            problems.append(f"{name}: {what} is now {value}: set STILL_OVER to it, or remove the entry if it is within {LIMITS[what]}")
    problems += [f"STILL_OVER names {key}, which is not measured" for key in STILL_OVER if key not in found]
    assert not problems, '\n'.join(problems)


def test_the_limits_can_fail():
    assert over('share of code cells with output', 0.2, 0.333) and not over('share of code cells with output', 0.5, 0.333)
    assert over('longest code cell', 31, 30) and not over('longest code cell', 30, 30)
    assert set(LIMITS) == {what for _, what in measures()}


def table_of_contents() -> list[str]:
    "The chapters that the README's tables of chapters link to, in order, from `nbs/index.ipynb` (README.md is made from it)."
    cells = json.loads((ROOT / 'nbs' / 'index.ipynb').read_text())['cells']
    return re.findall(r'^\| \[(\w+)\]\(\.\./nbs/(\w+)\.ipynb\)', ''.join(cells[0]['source']), re.M)


def test_the_readme_lists_every_chapter_once_in_order():
    listed = table_of_contents()
    assert all(name == target for name, target in listed), [pair for pair in listed if pair[0] != pair[1]]
    assert [name for name, _ in listed] == [nb.stem for nb in sorted((ROOT / 'nbs').glob('[0-9][0-9]_*.ipynb'))]
