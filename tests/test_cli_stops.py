"""`affine-train` where a stop or an error used to end in a traceback or a wrong line: two signals a millisecond apart, a
run resumed on a machine with fewer cores than its threads, closed and full output streams, paths that need quoting
and `--out` values that name no folder, and a run in portable mode resumed with the command it printed.

Real processes run the real command line on 2 000 images (`tiny_train.py`) where the fault needs one (signals, a
closed stderr, a full stdout, fewer cores, portable mode, which restarts the process); the rest runs in this process.
Every child gets the default SIGINT back first: one started with `&` by a non-interactive shell inherits it ignored.
"""
import json, os, signal, subprocess, sys, time
from pathlib import Path

import pytest

from affine_nb.distributed import RunConfig as TrainConfig
from affine_nb.repro import PORTABLE_ENV, portable_active, portable_env
from affine_nb.training import fit

sys.path.insert(0, str(Path(__file__).parent))
from tiny_train import Forked, default_sigint, finish, one_line, small_split

TINY = str(Path(__file__).with_name('tiny_train.py'))
EPOCHS = 2


def start(*args, preexec=default_sigint, stdout=subprocess.PIPE, env=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, TINY, '--quiet', *map(str, args)], stdout=stdout, stderr=subprocess.PIPE,
                            text=True, preexec_fn=preexec, env=env)


def digest(folder: Path) -> str:
    metrics = json.loads((folder / 'metrics.json').read_text())
    assert metrics['finished'] is True
    return metrics['weights_sha256']


def wait_for_file(path: Path, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.002)


def test_two_signals_a_moment_apart(tmp_path):
    "Ctrl-C twice (or Ctrl-C, then SIGTERM) within a few milliseconds, at several moments after the first checkpoint."
    tries = [(0.0, 0.0, signal.SIGINT), (0.0005, 0.02, signal.SIGINT), (0.001, 0.05, signal.SIGINT),
             (0.001, 0.1, signal.SIGTERM), (0.002, 0.15, signal.SIGINT), (0.005, 0.25, signal.SIGINT)]
    folders = [tmp_path / f'run{i}' for i in range(len(tries))]
    forked = Forked(tmp_path, [dict(argv=['--epochs', 40, '--threads', 1, '--out', folder]) for folder in folders])
    for pid, folder, (gap, after, second) in zip(forked.pids, folders, tries):
        wait_for_file(folder / 'checkpoint.pt')
        time.sleep(after)
        os.kill(pid, signal.SIGINT); time.sleep(gap); os.kill(pid, second)
    for (status, _, err), folder in zip(forked.finish(), folders):
        line = one_line(err)
        assert status == 130, err
        assert line.startswith("affine-train: interrupted (SIGINT); the last complete checkpoint (epoch "), line
        assert line.endswith(f") is intact: resume with --resume {folder / 'checkpoint.pt'}"), line


def test_resumed_with_its_threads_on_fewer_cores(tmp_path, in_process):
    """A run of 2 threads, stopped, then finished in a process that may use one core: the bits of a straight run. Large
    batches make few steps: two threads on one core wait for each other at every step."""
    folder = tmp_path / 'my run'
    checkpoint = folder / 'checkpoint.pt'
    (status, out, err), = Forked(tmp_path, [dict(argv=['--epochs', EPOCHS, '--threads', 2, '--batch-size', 500, '--stop-after', 1, '--out', folder])]).finish()
    assert status == 0 and out.strip().endswith(f"continue with: affine-train --resume '{checkpoint}'"), (out, err)

    status, _, err = in_process('--resume', checkpoint, '--threads', 1)
    assert status == 2 and 'its bits depend on the thread count' in one_line(err) and 'resume without --threads' in err, err

    (status, out, err), = Forked(tmp_path, [dict(argv=['--resume', checkpoint], one_core=True)]).finish()
    assert status == 0, err
    assert 'this run trains with 2 threads on the 1 CPU core(s) here' in one_line(err)
    assert digest(folder) == fit(TrainConfig(epochs=EPOCHS, threads=2, batch_size=500), small_split(True), small_split(False))[1]['weights_sha256']


def test_streams_closed_or_full(tmp_path):
    "stderr closed (`2>&-`) with progress bars, and at a stop; stdout on /dev/full after a finished run."
    forked = Forked(tmp_path, [dict(argv=['--epochs', 2, '--threads', 1, '--out', tmp_path / 'bars'], quiet=False, stderr=None),
                               dict(argv=['--epochs', 1, '--threads', 1, '--out', tmp_path / 'full'], stdout='/dev/full')])
    def no_stderr(): default_sigint(); os.close(2)
    process = start('--epochs', 40, '--threads', 1, '--out', tmp_path / 'stopped', preexec=no_stderr)   # started with 2>&-
    wait_for_file(tmp_path / 'stopped' / 'checkpoint.pt')
    process.send_signal(signal.SIGTERM)
    status, out, _ = finish(process)
    assert status == 143 and out == '', out                      # nothing to say it with, and stdout is for results
    (status, out, _), (full, _, err) = forked.finish()
    assert status == 0 and out.startswith('test accuracy'), out
    assert full == 1 and one_line(err) == (f"affine-train: cannot write to standard output (No space left on device); "
                                           f"the run's files are all written in {tmp_path / 'full'}")
    assert digest(tmp_path / 'full') and (tmp_path / 'full' / 'model.pt').exists()


def test_out_that_names_no_folder_and_a_lost_ending(tmp_path, in_process, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path('link').symlink_to(tmp_path / 'nowhere')
    for out, says in [('', '--out needs a folder'), ('link', 'link is a symbolic link to'), ('newx/../newy', "give --out newy")]:
        status, _, err = in_process('--epochs', 1, '--out', out)
        assert status == 2 and says in one_line(err), (out, err)
    assert sorted(os.listdir()) == ['link'] and not Path('link').exists()      # no runs/, newx or newy; the link untouched

    status, _, err = in_process('--epochs', 1, '--out', 'done')
    assert status == 0, err
    finished = digest(Path('done'))
    Path('done/model.pt').unlink()                                         # the ending lost its weights
    status, out, err = in_process('--resume', 'done/checkpoint.pt')
    assert status == 0 and 'nothing to do' not in out, (out, err)
    assert digest(Path('done')) == finished and Path('done/model.pt').exists()


@pytest.mark.skipif(portable_active(), reason="runs the command outside portable mode")
def test_portable_run_resumed_with_the_printed_command(tmp_path, in_process):
    env = {k: v for k, v in os.environ.items() if k not in PORTABLE_ENV}
    folder, big = tmp_path / 'half', ['--batch-size', 500, '--threads', 1]          # few steps: the pinned kernels are slower
    jobs = [dict(argv=['--epochs', 2, *big, '--out', tmp_path / 'straight']),
            dict(argv=['--portable', '--epochs', 2, *big, '--stop-after', 1, '--out', folder])]
    (status, _, err), (half, out, half_err) = Forked(tmp_path, jobs, env=portable_env(env)).finish()   # started portable: no restart
    if status == 2 and 'needs an x86-64 CPU with AVX2' in err: pytest.skip(err.strip())
    assert status == 0 and half == 0, (err, half_err)
    printed = out.strip().split('continue with: affine-train ')[1]
    assert printed == f"--resume {folder / 'checkpoint.pt'}"
    status, _, err = finish(start(*printed.split(' '), env=env))             # the command as printed: no --portable
    assert status == 0, err
    metrics = json.loads((folder / 'metrics.json').read_text())
    assert metrics['environment']['kernels']['portable'] is True
    assert digest(folder) == digest(tmp_path / 'straight')

    status, _, err = in_process('--epochs', 2, '--stop-after', 1, '--out', tmp_path / 'native')
    status, _, err = in_process('--resume', tmp_path / 'native' / 'checkpoint.pt', '--portable')
    assert status == 2 and '--portable: this run trains with the native kernels' in one_line(err), err
