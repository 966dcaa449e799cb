"""`affine-train` stopped by signals sent to real processes the way they happen: Ctrl-C, SIGTERM, SIGKILL at random
moments and during the last writes, two signals a millisecond apart, Ctrl-C and SIGKILL sent to the parent of
`--nproc 2` alone; and two runs started at the same instant into one folder.

Each must end with one clear line and the right exit status, and lose nothing: the folder then holds one run that the
printed command resumes or finishes, to the weights of an uninterrupted run, and no process outlives its parent. The
processes run the real command line on a small part of the data (`tiny_train.py`), forked from a process that has
imported the package already (`tiny_train.Forked`): these tests check mechanics, not accuracy.

A process started with `&` by a non-interactive shell inherits SIGINT as ignored, so Ctrl-C would not reach it; every
child here gets the default SIGINT back before it starts, and the suite passes as a background job too.

`test_killed_at_random_moments` prints its seed; AFFINE_NB_FAULT_SEED=SEED replays its moments.
"""
import json, multiprocessing, os, random, signal, time
from pathlib import Path

import pytest

from affine_nb.checkpoints import load_checkpoint
from affine_nb.integrity import save_atomic, write_atomic
from affine_nb.runs import RunFolderError, claimed_folder
from affine_nb.config import RunConfig
from affine_nb.training import fit
from tiny_train import (Forked, ForkedRun, descendants, final_digest, finish, one_line, running, small_split, started,
                        wait_for, wait_for_file)

EPOCHS = 12                     # about 0.2 s each on 2 000 images: long enough to be stopped in the middle
# a file-size limit: files over 1 MB fail with EFBIG (a checkpoint is about 5 MB, model.pt 1.6 MB)
SMALL_DISK = 1_000_000


def start(*args, fsize: int | None = None) -> ForkedRun:
    "`affine-train ARGS` in a real process, forked from one that has imported the package (`tiny_train.ForkedRun`)."
    return ForkedRun(['--epochs', EPOCHS, *args], fsize=fsize)


def run(*args, fsize: int | None = None) -> tuple[int, str, str]:
    return finish(start(*args, fsize=fsize))


def epoch_of(checkpoint: Path) -> int:
    try: return load_checkpoint(checkpoint)['epoch']
    except (OSError, ValueError): return 0


def litter(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith('.partial') or p.name.startswith('.'))


@pytest.fixture(scope='module')
def straight() -> str:
    "The weights digest of the uninterrupted run, which every interrupted one must reach."
    return fit(RunConfig(epochs=EPOCHS), small_split(True), small_split(False))[1]['weights_sha256']


@pytest.fixture
def in_process(in_process):
    "`affine-train ARGS` in this process (tests/conftest.py), with this file's number of epochs."
    return lambda *args: in_process('--epochs', EPOCHS, *args)


def test_sigterm_sigint_full_disk_then_resumed(tmp_path, straight, in_process):
    folder = tmp_path / 'run'
    checkpoint = folder / 'checkpoint.pt'
    for signum, resume in ((signal.SIGTERM, []), (signal.SIGINT, ['--resume', checkpoint])):
        process = start('--out', folder, *resume)
        reached = epoch_of(checkpoint)
        wait_for(lambda: epoch_of(checkpoint) > reached, process)
        process.send_signal(signum)
        status, _, err = finish(process)
        epoch = epoch_of(checkpoint)
        assert status == 128 + signum, err
        assert one_line(err) == (f"affine-train: interrupted ({signal.Signals(signum).name}); the last complete "
                                 f"checkpoint (epoch {epoch}) is intact: resume with --resume {checkpoint}")
        assert litter(folder) == [] and not (folder / 'model.pt').exists()

    status, _, err = run('--resume', checkpoint, fsize=SMALL_DISK)
    assert status == 1, err
    assert one_line(err).startswith(f"affine-train: checkpoint.pt is over this process's file-size limit (ulimit -f) "
                                    f"in {folder}")
    assert epoch_of(checkpoint) == epoch and litter(folder) == []

    status, out, err = in_process('--resume', checkpoint)
    assert status == 0, err
    assert final_digest(folder) == straight


def test_killed_while_writing_the_ending_then_disk_full_then_finished(tmp_path, straight, in_process):
    folder = tmp_path / 'run'
    checkpoint = folder / 'checkpoint.pt'
    process = start('--out', folder)
    # the ending has begun: metrics.json comes last
    wait_for(lambda: (folder / 'model.pt').exists(), process, poll=0.001)
    process.kill()
    finish(process)
    assert epoch_of(checkpoint) == EPOCHS and not (folder / 'metrics.json').exists()

    status, _, err = in_process('--out', folder)                            # a fresh run may not replace it
    assert status == 2 and 'already holds a run' in one_line(err), err

    status, _, err = run('--resume', checkpoint, fsize=SMALL_DISK)       # the disk fills while the ending is written
    assert status == 1, err
    assert one_line(err) == (f"affine-train: model.pt is over this process's file-size limit (ulimit -f) in {folder}; "
                             f"raise the limit; the checkpoint of the last epoch ({EPOCHS}) is intact: finish the run "
                             f"with --resume {checkpoint}")

    status, out, err = in_process('--resume', checkpoint)                   # the printed command finishes it
    assert status == 0 and f"after {EPOCHS} epochs" in out, err
    assert final_digest(folder) == straight and litter(folder) == []
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    status, out, _ = in_process('--resume', checkpoint)
    assert status == 0 and 'nothing to do, nothing rewritten' in out
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before


def test_killed_at_random_moments(tmp_path, straight, in_process):
    seed = int(os.environ.get('AFFINE_NB_FAULT_SEED', random.randrange(2**32)))
    print(f"seed {seed} (AFFINE_NB_FAULT_SEED={seed} repeats its moments)")
    rng = random.Random(seed)
    for trial in range(2):
        folder = tmp_path / f'run{trial}'
        checkpoint = folder / 'checkpoint.pt'
        process = start('--out', folder)
        time.sleep(rng.uniform(0.1, 4.0))                 # start, training and the ending all fall in this range
        process.kill()
        finish(process)
        command = ['--resume', checkpoint] if checkpoint.exists() else ['--out', folder]
        status, out, err = in_process(*command)
        assert status == 0, (command, err)
        assert final_digest(folder) == straight, command
        assert litter(folder) == []


def claim_and_write(out: Path, start_together, results) -> None:
    "In a forked process: claim `out` at the same instant as the others, write a run's files into it, report."
    start_together.wait()
    try:
        with claimed_folder(out):
            save_atomic({'epoch': 1, 'pid': os.getpid()}, out / 'checkpoint.pt')
            write_atomic(json.dumps({'pid': os.getpid()}).encode(), out / 'metrics.json')
        results.put((os.getpid(), 'won'))
    except RunFolderError as e: results.put((os.getpid(), str(e)))
    except BaseException as e: results.put((os.getpid(), f"{type(e).__name__}: {e}"))


def test_simultaneous_claims_many_times(tmp_path):
    fork = multiprocessing.get_context('fork')    # forked from this process: no start-up, so the claims really meet
    for round in range(25):
        out, start_together, results = tmp_path / f'run{round}', fork.Barrier(3), fork.Queue()
        processes = [fork.Process(target=claim_and_write, args=(out, start_together, results)) for _ in range(3)]
        for process in processes: process.start()
        for process in processes: process.join(30)
        outcomes = dict(results.get(timeout=5) for _ in processes)
        winners = [pid for pid, outcome in outcomes.items() if outcome == 'won']
        assert len(winners) == 1, outcomes
        for pid, outcome in outcomes.items():
            assert (outcome == 'won' or 'is being written by another run' in outcome
                    or 'already holds a run' in outcome), outcome
        assert json.loads((out / 'metrics.json').read_text())['pid'] == winners[0]
        assert sorted(p.name for p in out.iterdir()) == ['checkpoint.pt', 'metrics.json']


def test_simultaneous_starts_into_one_folder(tmp_path, straight):
    folder = tmp_path / 'run'
    # forked in the same moment
    results = Forked(tmp_path, [dict(argv=['--epochs', EPOCHS, '--out', folder])] * 2).finish()
    assert sorted(status for status, _, _ in results) == [0, 2], results
    refused = next(err for status, _, err in results if status == 2)
    assert any(reason in one_line(refused)
               for reason in ('is being written by another run', 'already holds a run')), refused
    assert final_digest(folder) == straight and litter(folder) == []


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


def test_sigint_to_the_parent_of_two_processes(tmp_path):
    folder = tmp_path / 'run'
    checkpoint = folder / 'checkpoint.pt'
    process = started('--epochs', EPOCHS, '--out', folder, '--nproc', 2)    # a new Python process, ranks below it
    wait_for(lambda: epoch_of(checkpoint) >= 1, process)
    ranks = descendants(process.pid)                     # the ranks, and the fork server they came from
    process.send_signal(signal.SIGINT)                   # the parent alone, not its process group
    status, out, err = finish(process, timeout=60)
    assert status == 130 and 'test accuracy' not in out, (out, err)
    epoch = epoch_of(checkpoint)
    assert f"interrupted (SIGINT); the last complete checkpoint (epoch {epoch}) is intact" in one_line(err)
    assert not (folder / 'metrics.json').exists() and litter(folder) == []
    assert len(ranks) >= 2, ranks
    deadline = time.time() + 10                          # no rank outlives the parent
    while (alive := [pid for pid in ranks if running(pid)]) and time.time() < deadline: time.sleep(0.1)
    assert alive == [], alive


@pytest.mark.skipif(not Path('/proc/self/task').exists(), reason="finds the processes in /proc")
def test_sigkill_to_the_parent_of_two_processes(tmp_path):
    checkpoint = tmp_path / 'run' / 'checkpoint.pt'
    process = started('--epochs', 200, '--nproc', 2, '--threads', 1, '--out', checkpoint.parent)
    wait_for(checkpoint.exists, process, poll=0.05, timeout=60)                  # the ranks train
    below = descendants(process.pid)                                 # the ranks, the fork server, the resource tracker
    process.kill()
    finish(process)
    deadline = time.time() + 10
    while (alive := [pid for pid in below if running(pid)]) and time.time() < deadline: time.sleep(0.05)
    assert len(below) >= 3 and alive == [], (below, alive)
