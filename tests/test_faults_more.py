"""More faults, sent the way they happen: SIGKILL to the parent of `--nproc 2`, a timeout too short for the processes
to meet, SIGTERM and Ctrl-C during the first extraction of the data, a file-size limit and a full disk while
extracting; and settings and metrics that must be refused in one line before any work.

Real processes only where the fault needs one (signals, a killed parent, limits of a process); the rest runs in this
process. Each error is one line, with exit status 2 (128 + the signal's number for a signal), and leaves nothing behind.
"""
import json, os, shutil, signal, subprocess, sys, time
from pathlib import Path

import pytest

from affine_nb.cli import main
from affine_nb.integrity import FILES, check_files, checked_split
from affine_nb.repro import compare_main
from tiny_train import ForkedRun, default_sigint, descendants, finish, one_line, run_in_process, running, wait_for

TINY = str(Path(__file__).with_name('tiny_train.py'))


def start(*args, preexec=default_sigint) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, TINY, '--quiet', *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=preexec)


def gz_only(folder: Path, placeholders: bool = False) -> Path:
    "A data folder with the four .gz files and nothing extracted (`placeholders`: empty test files, the training .gz alone real)."
    raw = folder / 'FashionMNIST' / 'raw'
    raw.mkdir(parents=True)
    for name in FILES:
        if placeholders and name.startswith('t10k'): (raw / name).touch()
        else: shutil.copy(check_files() / name, raw / name)
    return raw


@pytest.mark.skipif(not Path('/proc/self/task').exists(), reason="finds the processes in /proc")
def test_sigkill_to_the_parent_of_two_processes(tmp_path):
    checkpoint = tmp_path / 'run' / 'checkpoint.pt'
    process = start('--epochs', 200, '--nproc', 2, '--threads', 1, '--out', checkpoint.parent)
    wait_for(checkpoint.exists, process, poll=0.05, timeout=60)                  # the ranks train
    below = descendants(process.pid)                                 # the ranks, the fork server, the resource tracker
    process.kill()
    finish(process)
    deadline = time.time() + 10
    while (alive := [pid for pid in below if running(pid)]) and time.time() < deadline: time.sleep(0.05)
    assert len(below) >= 3 and alive == [], (below, alive)


def test_timeout_too_short_for_the_processes_to_meet(tmp_path):
    status, _, err = finish(ForkedRun(['--epochs', 1, '--nproc', 2, '--threads', 1, '--timeout', 0.001, '--out', tmp_path / 'run']))
    line = one_line(err)                  # the processes time out while they meet, or at their first collective
    assert status == 2 and 'the timeout of 0.001 s' in line and "give them more time (--timeout SECONDS" in line, err


def test_signals_during_the_first_extraction(tmp_path):
    for signum in (signal.SIGTERM, signal.SIGINT):
        raw = gz_only(tmp_path / signal.Signals(signum).name)
        process = ForkedRun(['--epochs', 1, '--data', raw.parent.parent, '--out', tmp_path / 'run'])     # forked: no start of torch
        wait_for(lambda: any(p.name.endswith('.partial') for p in raw.iterdir()), process, poll=0.001, timeout=60)
        process.send_signal(signum)
        status, _, err = finish(process)
        assert status == 128 + signum, err
        assert one_line(err) == (f"interrupted ({signal.Signals(signum).name}) while extracting train-images-idx3-ubyte.gz in "
                                 f"{raw}; nothing was left half-written: run again")
        assert sorted(p.name for p in raw.iterdir()) == sorted(FILES)


def test_file_size_limit_while_extracting(tmp_path):
    raw = gz_only(tmp_path / 'data')
    status, _, err = finish(ForkedRun(['--epochs', 1, '--data', raw.parent.parent, '--out', tmp_path / 'run'], fsize=1_000_000))
    assert status == 2, err
    assert one_line(err).startswith(f"affine-train: error: cannot extract train-images-idx3-ubyte in {raw}: it is larger than the "
                                    f"file-size limit of this process (ulimit -f)"), err
    assert 'no space' not in err and sorted(p.name for p in raw.iterdir()) == sorted(FILES)


@pytest.fixture
def small_disk(tmp_path):
    "A 30 MB filesystem (tmpfs; mounting needs root): room for the training .gz, not for what it extracts to."
    if os.geteuid() != 0 or not shutil.which('mount'): pytest.skip("mounting a small filesystem needs root")
    disk = tmp_path / 'disk'; disk.mkdir()
    done = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=30m', 'tmpfs', str(disk)], capture_output=True, text=True)
    if done.returncode != 0: pytest.skip(f"no tmpfs here: {done.stderr.strip()}")
    yield disk
    subprocess.run(['umount', str(disk)], check=True)


def test_full_disk_while_extracting(small_disk, tmp_path):
    raw = gz_only(small_disk, placeholders=True)
    with pytest.raises(OSError) as failed: checked_split(True, small_disk)
    assert str(failed.value).startswith(f"no space left on {raw} to extract train-images-idx3-ubyte: free some space there"), failed.value
    status, _, err = run_in_process(main, '--data', small_disk, '--out', tmp_path / 'run')
    assert status == 2 and one_line(err).startswith(f"affine-train: error: no space left on {raw}"), err
    assert sorted(p.name for p in raw.iterdir()) == sorted(FILES)


@pytest.mark.parametrize('argv, message', [
    (['--nproc', 2, '--threads', 1, '--batch-size', 1], "--batch-size 1 leaves a batch of 1 of the 60000 training images, fewer than the 2 processes"),
    (['--recipe', 'speedrun', '--widths', '²'], "--widths must be whole numbers from 1 to 4096"),
    (['--recipe', 'speedrun', '--widths', '16,100000'], "--widths must be whole numbers from 1 to 4096"),
    (['--recipe', 'speedrun', '--holdout', 95], "--batch-size 128 leaves a batch of 1 of the 59905 training images, 1 per process, and BatchNorm"),
    (['--batchnorm', '--batch-size', 59_999], "--batch-size 59999 leaves a batch of 1 of the 60000 training images, 1 per process, and BatchNorm"),
    (['--recipe', 'speedrun', '--batchnorm'], "--batchnorm adds BatchNorm to the recipe's network only"),
])
def test_settings_refused_before_any_work(tmp_path, argv, message):
    status, _, err = run_in_process(main, *argv, '--out', tmp_path / 'run')
    assert status == 2 and message in one_line(err), err
    assert not (tmp_path / 'run').exists()


def test_compare_refuses_what_is_no_run_or_not_comparable(tmp_path):
    reference = Path(__file__).parents[1] / 'results' / 'default' / 'metrics.json'
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
    assert status == 2 and "not comparable: a run of the speedrun recipe" in one_line(err), err
