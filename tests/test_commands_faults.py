"""`affine-publish`, `affine-compare` and `affine-portable` given what they should refuse: a folder a live run holds,
result files that are cut, emptied, nested without end or not files at all, a run folder whose `model.pt` is another
run's, an empty command. Each ends with one line and its own exit status (0 done, 1 failed, 2 refused before any work,
3 for `affine-publish --check`'s "stale"), and deletes nothing.

`affine-publish` finds its project from the current folder, so its tests work in a copy of the committed result files.
The live run is a real `affine-train` process on 2 000 images (`tiny_train.py`), paused (SIGSTOP) while it holds its
folder, so that the moment tested cannot pass before the test looks.
"""
import hashlib, json, resource, shutil, signal, subprocess, sys
from pathlib import Path

import pytest
import torch

from affine_nb.model import make_model
from affine_nb.publish import documents, publish_main
from affine_nb.repro import compare_main, run_portable

sys.path.insert(0, str(Path(__file__).parent))
from tiny_train import default_sigint, finish, one_line, run_in_process, wait_for

ROOT = Path(__file__).parents[1]
TINY = str(Path(__file__).with_name('tiny_train.py'))
BIN = Path(sys.executable).parent
# `affine-publish ARGS` as its console script runs it, once it has read its stdin: the test starts it early
PUBLISH = "import sys; from affine_nb.publish import publish_main; sys.stdin.read(); sys.exit(publish_main())"


def contents(folder: Path) -> dict:
    "Every file below `folder`, with the sha256 of its bytes."
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob('*')) if p.is_file()}


def project_copy(tmp_path: Path) -> Path:
    "A checkout as `affine-publish` finds one (settings.ini, affine_nb/, nbs/), with what the text is made from."
    copy = tmp_path / 'project'
    shutil.copytree(ROOT / 'results', copy / 'results')
    for name in ('settings.ini', 'nbs/index.ipynb', 'bench/results.md'):
        (copy / name).parent.mkdir(parents=True, exist_ok=True); shutil.copy(ROOT / name, copy / name)
    (copy / 'affine_nb').mkdir()
    return copy


def test_publish_leaves_a_live_run_alone(tmp_path):
    "A run holds results/default: `affine-publish --stage reference` says so in one line, exit 2, and deletes nothing."
    project = tmp_path / 'project'
    for folder in ('nbs', 'affine_nb'): (project / folder).mkdir(parents=True)
    shutil.copy(ROOT / 'settings.ini', project)
    live = project / 'results' / 'default'
    pipes = dict(stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)
    run = subprocess.Popen([sys.executable, TINY, '--quiet', '--epochs', '50', '--out', str(live)], **pipes)
    publish = subprocess.Popen([sys.executable, '-c', PUBLISH, '--stage', 'reference'], cwd=project,
                               stdin=subprocess.PIPE, **pipes)
    try:
        wait_for((live / 'checkpoint.pt').exists, run, poll=0.01)
        run.send_signal(signal.SIGSTOP)                   # the run holds its folder's lock, and stays there
        before = contents(live)
        out, err = publish.communicate('', timeout=120)
    finally:
        run.kill(); finish(run)
        if publish.poll() is None: publish.kill(); publish.communicate()
    assert 'held by a live run' in one_line(err) and str(live) in err, err
    assert (publish.returncode, out) == (2, ''), (publish.returncode, out)
    assert contents(live) == before and 'checkpoint.pt' in before                # nothing deleted


def cut(path: Path): path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])


def small_confusion(path: Path):                          # torch's topk: "selected index k out of range"
    path.write_text(json.dumps(json.loads(path.read_text()) | {'confusion': [[1, 2], [3, 4]]}))


ODD = {  # the file, and what is planted in it; in brackets, what `--check` ended in before: a traceback, exit 1
    'cut metrics.json (ValueError)': ('results/default/metrics.json', cut),
    'cut analysis.json (JSONDecodeError)': ('results/default/analysis.json', cut),
    'cut climb (JSONDecodeError)': ('results/speedrun/ladder/rung02-seed43.json', cut),
    'odd analysis.json (RuntimeError)': ('results/default/analysis.json', small_confusion),
    'missing analysis.json (FileNotFoundError)': ('results/default/analysis.json', Path.unlink),
    'missing kernel run (FileNotFoundError)': ('results/kernels/native/metrics.json', Path.unlink),
    'nested (RecursionError)': ('results/experiments/step-3ep-seed43/metrics.json', lambda p: p.write_text('[' * 9**5)),
    'a list (TypeError)': ('results/speedrun/test/default-seed42.json', lambda p: p.write_text('[]')),
    'not finished (accepted)': ('results/kernels/portable/metrics.json',
                                lambda p: p.write_text(json.dumps(json.loads(p.read_text()) | {'finished': 'no'}))),
}


@pytest.mark.parametrize('case', ODD)
def test_check_names_an_odd_result_file(tmp_path, monkeypatch, case):
    "`affine-publish --check` on a result file cut, emptied or odd: one line that names it and the fix, exit 1."
    project = project_copy(tmp_path)
    name, plant = ODD[case]
    plant(project / name)
    monkeypatch.chdir(project)
    status, out, err = run_in_process(publish_main, '--check')
    assert name in one_line(err) and 'affine-publish --stage' in err, err
    assert (status, out) == (1, ''), (status, out)


def test_check_stale_has_its_own_status(tmp_path, monkeypatch):
    "A generated text out of date is 3 (`STALE`), not 1 (a file that cannot be read) nor 0."
    project = project_copy(tmp_path)
    for path, text in documents(project).items(): path.write_text(text)                    # current, then edited
    (project / 'metrics.md').write_text((project / 'metrics.md').read_text() + 'an edit\n')
    monkeypatch.chdir(project)
    status, out, err = run_in_process(publish_main, '--check')
    assert status == 3 and 'metrics.md is out of date' in out and err == '', (status, out, err)


def no_more_memory():
    "In the child: 1 GiB of data at most, so that reading without end fails fast instead of filling the machine."
    default_sigint(); resource.setrlimit(resource.RLIMIT_DATA, (1 << 30, 1 << 30))


def test_compare_refuses_a_device(tmp_path):
    "`affine-compare /dev/zero` would read until memory runs out: it is not a file, one line, exit 2."
    done = subprocess.run([BIN / 'affine-compare', '/dev/zero'], capture_output=True, text=True, timeout=120,
                          preexec_fn=no_more_memory)
    assert 'not a regular file' in one_line(done.stderr) and done.returncode == 2, done


def run_folder(tmp_path: Path, **changes) -> Path:
    "A run folder holding the committed reference's metrics.json, changed by `changes`."
    folder = tmp_path / 'run'; folder.mkdir()
    metrics = json.loads((ROOT / 'results' / 'default' / 'metrics.json').read_text()) | changes
    (folder / 'metrics.json').write_text(json.dumps(metrics))
    return folder


def test_compare_refuses_nesting_without_end(tmp_path, monkeypatch):
    "A metrics.json of 100 000 `[`: one line, exit 2 (not a RecursionError)."
    monkeypatch.chdir(ROOT)                                           # the reference: this checkout's
    nested = tmp_path / 'nested'; nested.mkdir(); (nested / 'metrics.json').write_text('[' * 100_000)
    status, out, err = run_in_process(compare_main, nested)
    assert (status, out) == (2, '') and 'nested too deeply' in one_line(err), (status, out, err)


def test_compare_finished_means_true(tmp_path, monkeypatch):
    "`\"finished\": \"no\"` is not a finished run: one line, exit 2, no verdict."
    monkeypatch.chdir(ROOT)
    status, out, err = run_in_process(compare_main, run_folder(tmp_path, finished='no'))
    assert (status, out) == (2, '') and 'not the metrics.json of a finished' in one_line(err), (status, out, err)


def test_compare_checks_the_weights_in_the_folder(tmp_path, monkeypatch):
    "The reference's metrics.json beside another model.pt is not bit-identical: one line naming model.pt, exit 2."
    monkeypatch.chdir(ROOT)
    folder = run_folder(tmp_path)
    status, out, _ = run_in_process(compare_main, folder)
    assert (status, out) == (0, 'bit-identical (same kernels)\n'), out                    # the record alone: itself
    torch.manual_seed(0); torch.save(make_model().state_dict(), folder / 'model.pt')     # another run's weights
    status, out, err = run_in_process(compare_main, folder)
    assert (status, out) == (2, '') and str(folder / 'model.pt') in one_line(err), (status, out, err)


def test_portable_refuses_an_empty_command(monkeypatch):
    "`affine-portable ''`: one line, exit 2, nothing run (`os.execvpe` refuses '' before it replaces this process)."
    monkeypatch.setattr(sys, 'argv', ['affine-portable', ''])
    status, out, err = run_in_process(lambda argv: run_portable())
    assert (status, out) == (2, '') and 'empty string' in one_line(err), (status, out, err)


def test_readme_documents_the_exit_codes():
    "The README's source has an Exit codes section: every command, and `affine-publish --check`'s own status for stale."
    from affine_nb.publish import STALE
    cells = json.loads((ROOT / 'nbs' / 'index.ipynb').read_text())['cells']
    text = '\n'.join(''.join(c['source']) for c in cells if c['cell_type'] == 'markdown')
    assert '\n## Exit codes\n' in text
    section = text.split('\n## Exit codes\n', 1)[1].split('\n## ', 1)[0]
    for command in ('affine-train', 'affine-compare', 'affine-portable', 'affine-publish'):
        assert f"`{command}" in section, command
    rows = {columns[1].strip(): line for line in section.splitlines()
            if len(columns := line.split('|')) > 2 and columns[1].strip().isdigit()}
    assert set(rows) == {'0', '1', '2', str(STALE)} and 'stale' in rows[str(STALE)], rows
