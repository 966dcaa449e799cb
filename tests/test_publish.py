"""`affine-publish` given what it should refuse: a folder a live run holds, and result files that are cut, emptied,
nested without end or not what they should be. Each ends with one line and its own exit status (0 done, 1 failed, 2
refused before any work, 3 for `--check`'s "stale"), and deletes nothing.

`affine-publish` finds its project from the current folder, so its tests work in a copy of the committed result files.
The live run is a real `affine-train` process on 2 000 images (`tiny_train.py`), paused (SIGSTOP) while it holds its
folder, so that the moment tested cannot pass before the test looks.
"""
import hashlib, json, shutil, signal, subprocess, sys
from pathlib import Path

import pytest

from affine_nb.published import documents, publish_main, stale_chapters
from tiny_train import ROOT, default_sigint, finish, one_line, run_in_process, started, wait_for

# `affine-publish ARGS` as its console script runs it, once it has read its stdin: the test starts it early
PUBLISH = "import sys; from affine_nb.published import publish_main; sys.stdin.read(); sys.exit(publish_main())"


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
    run = started('--epochs', 50, '--out', live)
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


def test_check_notices_a_chapter_whose_listed_files_changed(tmp_path):
    """The site chapter's table of chapters counts the notebooks: with one more notebook its outputs are out of date,
    though its code is not; so are the analysis chapter's when the committed run's metrics change."""
    project = project_copy(tmp_path)
    shutil.copytree(ROOT / 'nbs', project / 'nbs', dirs_exist_ok=True, ignore=shutil.ignore_patterns('.*'))
    shutil.copytree(ROOT / 'figures', project / 'figures')
    assert stale_chapters(project) == []
    planted = project / 'nbs' / '13_planted.ipynb'
    shutil.copy(project / 'nbs' / '12_extending.ipynb', planted)
    assert [p.name for p in stale_chapters(project)] == ['27_site.ipynb']      # the copy's own outputs are current
    planted.unlink()
    metrics = project / 'results' / 'default' / 'metrics.json'
    metrics.write_text(metrics.read_text().replace('"test_acc"', '"test_acc" ', 1))
    assert [p.name for p in stale_chapters(project)] == ['04_analysis.ipynb', '15_speedrun.ipynb', '16_config.ipynb',
                                                        '18_predict.ipynb', '19_probe.ipynb',
                                                        '21_reproducibility.ipynb', '26_report.ipynb']
