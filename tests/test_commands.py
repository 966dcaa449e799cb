"""`affine-compare` and `affine-portable` given what they should refuse: result files that are no run's, not
comparable, nested without end or not files at all, a run folder whose `model.pt` is another run's, an empty command.
Each ends with one line and exit status 2, refused before any work. And the README's table of every command's exit
statuses.

All in this process but the device that `affine-compare` must not read to its end.
"""
import json, resource, subprocess, sys
from pathlib import Path

import torch

from affine_nb.model import make_model
from affine_nb.repro import compare_main, run_portable
from tiny_train import ROOT, default_sigint, one_line, run_in_process

BIN = Path(sys.executable).parent


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


def test_compare_refuses_what_is_no_run_or_not_comparable(tmp_path):
    reference = ROOT / 'results' / 'default' / 'metrics.json'
    for junk in ('null', '5'):
        (tmp_path / 'metrics.json').write_text(junk)
        status, _, err = run_in_process(compare_main, tmp_path, '--reference', reference)
        assert status == 2 and 'is not the metrics.json of a finished affine-train run' in one_line(err), err
    metrics = json.loads(reference.read_text())
    unfinished = metrics | dict(finished=False, history=metrics['history'][:1])
    (tmp_path / 'metrics.json').write_text(json.dumps(unfinished))
    status, _, err = run_in_process(compare_main, tmp_path, '--reference', reference)
    assert status == 2 and one_line(err).endswith(f"stopped after epoch 1 of 3; finish it with affine-train --resume "
                                                  f"{tmp_path / 'checkpoint.pt'}, then compare again"), err
    speedrun = json.loads((reference.parents[1] / 'speedrun' / 'speedrun-seed42' / 'metrics.json').read_text())
    (tmp_path / 'metrics.json').write_text(json.dumps(speedrun))
    status, _, err = run_in_process(compare_main, tmp_path, '--reference', reference)
    differs = f"other settings than the reference's (epochs {speedrun['config']['epochs']} vs 3"
    assert status == 2 and f"not comparable: {differs}" in one_line(err), err


def test_portable_refuses_an_empty_command(monkeypatch):
    "`affine-portable ''`: one line, exit 2, nothing run (`os.execvpe` refuses '' before it replaces this process)."
    monkeypatch.setattr(sys, 'argv', ['affine-portable', ''])
    status, out, err = run_in_process(lambda argv: run_portable())
    assert (status, out) == (2, '') and 'empty string' in one_line(err), (status, out, err)


def test_readme_documents_the_exit_codes():
    "The README's source has an Exit codes section: every command, and `affine-publish --check`'s own status for stale."
    from affine_nb.published import STALE
    cells = json.loads((ROOT / 'nbs' / 'index.ipynb').read_text())['cells']
    text = '\n'.join(''.join(c['source']) for c in cells if c['cell_type'] == 'markdown')
    assert '\n## Exit codes\n' in text
    section = text.split('\n## Exit codes\n', 1)[1].split('\n## ', 1)[0]
    for command in ('affine-train', 'affine-compare', 'affine-portable', 'affine-publish', 'affine-predict',
                    'affine-export'):
        assert f"`{command}" in section, command
    rows = {columns[1].strip(): line for line in section.splitlines()
            if len(columns := line.split('|')) > 2 and columns[1].strip().isdigit()}
    assert set(rows) == {'0', '1', '2', str(STALE)} and 'stale' in rows[str(STALE)], rows


WITHOUT_DEV = """
import sys
sys.modules['nbformat'] = sys.modules['nbclient'] = None     # as on `pip install -e .`, without the dev extra
sys.argv = ['affine-publish', *sys.argv[1:]]
from affine_nb.published import publish_main
sys.exit(publish_main())
"""


def test_publish_without_the_dev_extra_says_what_to_install():
    "On an install without the dev extra (no nbformat, no nbclient), `affine-publish` says in one line what to install."
    done = subprocess.run([sys.executable, '-c', WITHOUT_DEV, '--check'], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 2 and "pip install -e '.[dev]'" in one_line(done.stderr), done.stderr


def test_every_console_script_is_tested_for_a_plain_install():
    """Each console script needs the packages of a plain install only (`affine-export --onnx` says what to install, a
    test of its own), or is `affine-publish`, which the test above runs."""
    scripts = [s.split('=')[0] for s in ROOT.joinpath('settings.ini').read_text().split('console_scripts = ')[1]
               .splitlines()[0].split()]
    assert scripts == ['affine-train', 'affine-portable', 'affine-compare', 'affine-publish', 'affine-predict',
                       'affine-export'], scripts
    blocked = ("import sys; sys.modules.update(dict.fromkeys(['nbformat', 'nbclient', 'onnx', 'onnxscript', "
               "'onnxruntime'])); ")
    imports = "import affine_nb.cli, affine_nb.repro, affine_nb.predict"
    assert subprocess.run([sys.executable, '-c', blocked + imports]).returncode == 0
