"""`affine-train` under real faults, sent to real processes the way they happen: Ctrl-C, SIGTERM, SIGKILL at random
moments and during the last writes, a file-size limit (`ulimit -f`), two runs started at the same instant into one
folder, and Ctrl-C sent to the parent of `--nproc 2` alone; and a read-only filesystem.

Each must end with one clear line and the right exit status, and lose nothing: the folder then holds one run that the
printed command resumes or finishes, to the weights of an uninterrupted run. The processes run the real command line on
a small part of the data (`tiny_train.py`), forked from a process that has imported the package already
(`tiny_train.Forked`): these tests check mechanics, not accuracy.

A process started with `&` by a non-interactive shell inherits SIGINT as ignored, so Ctrl-C would not reach it; every
child here gets the default SIGINT back before it starts, and the suite passes as a background job too.
"""
import json, multiprocessing, os, random, shutil, signal, subprocess, sys, time
from pathlib import Path

import pytest

from affine_nb.checkpoints import load_checkpoint
from affine_nb.integrity import save_atomic, write_atomic
from affine_nb.runs import RunFolderError, claimed_folder
from affine_nb.cli import main
from affine_nb.integrity import FILES, check_files
from affine_nb.distributed import RunConfig as TrainConfig
from affine_nb.training import fit

sys.path.insert(0, str(Path(__file__).parent))
from tiny_train import Forked, ForkedRun, default_sigint, descendants, finish, one_line, running, small_split, wait_for

TINY = str(Path(__file__).with_name('tiny_train.py'))
EPOCHS = 12                     # about 0.2 s each on 2 000 images: long enough to be stopped in the middle


SMALL_DISK = 1_000_000     # a file-size limit: files over 1 MB fail with EFBIG (a checkpoint is about 5 MB, model.pt 1.6 MB)


def start(*args, fsize: int | None = None) -> ForkedRun:
    "`affine-train ARGS` in a real process, forked from one that has imported the package (`tiny_train.ForkedRun`)."
    return ForkedRun(['--epochs', EPOCHS, *args], fsize=fsize)


def started(*args) -> subprocess.Popen:
    "`affine-train ARGS` in a new Python process (for `--nproc`, whose ranks the test finds below it)."
    return subprocess.Popen([sys.executable, TINY, '--quiet', '--epochs', str(EPOCHS), *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)


def run(*args, fsize: int | None = None) -> tuple[int, str, str]:
    return finish(start(*args, fsize=fsize))


def epoch_of(checkpoint: Path) -> int:
    try: return load_checkpoint(checkpoint)['epoch']
    except (OSError, ValueError): return 0


def final_digest(folder: Path) -> str:
    metrics = json.loads((folder / 'metrics.json').read_text())
    assert metrics['finished'] is True
    return metrics['weights_sha256']


def litter(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith('.partial') or p.name.startswith('.'))


@pytest.fixture(scope='module')
def straight() -> str:
    "The weights digest of the uninterrupted run, which every interrupted one must reach."
    return fit(TrainConfig(epochs=EPOCHS), small_split(True), small_split(False))[1]['weights_sha256']


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
        assert one_line(err) == (f"affine-train: interrupted ({signal.Signals(signum).name}); the last complete checkpoint "
                                 f"(epoch {epoch}) is intact: resume with --resume {checkpoint}")
        assert litter(folder) == [] and not (folder / 'model.pt').exists()

    status, _, err = run('--resume', checkpoint, fsize=SMALL_DISK)
    assert status == 1, err
    assert one_line(err).startswith(f"affine-train: checkpoint.pt is over this process's file-size limit (ulimit -f) in {folder}")
    assert epoch_of(checkpoint) == epoch and litter(folder) == []

    status, out, err = in_process('--resume', checkpoint)
    assert status == 0, err
    assert final_digest(folder) == straight


def test_killed_while_writing_the_ending_then_disk_full_then_finished(tmp_path, straight, in_process):
    folder = tmp_path / 'run'
    checkpoint = folder / 'checkpoint.pt'
    process = start('--out', folder)
    wait_for(lambda: (folder / 'model.pt').exists(), process, poll=0.001)     # the ending has begun: metrics.json comes last
    process.kill()
    finish(process)
    assert epoch_of(checkpoint) == EPOCHS and not (folder / 'metrics.json').exists()

    status, _, err = in_process('--out', folder)                            # a fresh run may not replace it
    assert status == 2 and 'already holds a run' in one_line(err), err

    status, _, err = run('--resume', checkpoint, fsize=SMALL_DISK)       # the disk fills while the ending is written
    assert status == 1, err
    assert one_line(err) == (f"affine-train: model.pt is over this process's file-size limit (ulimit -f) in {folder}; raise the limit; the checkpoint "
                             f"of the last epoch ({EPOCHS}) is intact: finish the run with --resume {checkpoint}")

    status, out, err = in_process('--resume', checkpoint)                   # the printed command finishes it
    assert status == 0 and f"after {EPOCHS} epochs" in out, err
    assert final_digest(folder) == straight and litter(folder) == []
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    status, out, _ = in_process('--resume', checkpoint)
    assert status == 0 and 'nothing to do, nothing rewritten' in out
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before


def test_killed_at_random_moments(tmp_path, straight, in_process):
    rng = random.Random(int(os.environ.get('AFFINE_NB_FAULT_SEED', time.time_ns())))
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
    fork = multiprocessing.get_context('fork')          # forked from this process: no start-up, so the claims really meet
    for round in range(25):
        out, start_together, results = tmp_path / f'run{round}', fork.Barrier(3), fork.Queue()
        processes = [fork.Process(target=claim_and_write, args=(out, start_together, results)) for _ in range(3)]
        for process in processes: process.start()
        for process in processes: process.join(30)
        outcomes = dict(results.get(timeout=5) for _ in processes)
        winners = [pid for pid, outcome in outcomes.items() if outcome == 'won']
        assert len(winners) == 1, outcomes
        for pid, outcome in outcomes.items():
            assert outcome == 'won' or 'is being written by another run' in outcome or 'already holds a run' in outcome, outcome
        assert json.loads((out / 'metrics.json').read_text())['pid'] == winners[0]
        assert sorted(p.name for p in out.iterdir()) == ['checkpoint.pt', 'metrics.json']


def test_simultaneous_starts_into_one_folder(tmp_path, straight):
    folder = tmp_path / 'run'
    results = Forked(tmp_path, [dict(argv=['--epochs', EPOCHS, '--out', folder])] * 2).finish()      # forked in the same moment
    assert sorted(status for status, _, _ in results) == [0, 2], results
    refused = next(err for status, _, err in results if status == 2)
    assert any(reason in one_line(refused) for reason in ('is being written by another run', 'already holds a run')), refused
    assert final_digest(folder) == straight and litter(folder) == []


def test_sigint_to_the_parent_of_two_processes(tmp_path):
    folder = tmp_path / 'run'
    checkpoint = folder / 'checkpoint.pt'
    process = started('--out', folder, '--nproc', 2)
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


@pytest.fixture
def read_only(tmp_path):
    "A folder on a read-only filesystem (a read-only bind mount; needs root, as CI has), holding the four .gz files."
    if os.geteuid() != 0 or not shutil.which('mount'): pytest.skip("a read-only mount needs root")
    source, mounted = tmp_path / 'source', tmp_path / 'read-only'
    raw = source / 'FashionMNIST' / 'raw'
    raw.mkdir(parents=True); mounted.mkdir()
    for name in FILES: shutil.copy(check_files() / name, raw / name)
    done = subprocess.run(f"mount --bind {source} {mounted} && mount -o remount,ro,bind {mounted}", shell=True, capture_output=True)
    if done.returncode != 0: pytest.skip(f"no read-only mount here: {done.stderr.strip()}")
    yield mounted
    subprocess.run(['umount', str(mounted)], check=True)


def test_read_only_filesystem(read_only, capsys):
    for argv, message in [(['--out', str(read_only / 'run')], f"cannot write to the output folder {read_only / 'run'}"),
                          (['--data', str(read_only)], f"cannot extract train-images-idx3-ubyte.gz in {read_only / 'FashionMNIST' / 'raw'}: the folder is read-only")]:
        with pytest.raises(SystemExit) as stopped: main(argv)
        err = capsys.readouterr().err
        assert stopped.value.code == 2 and message in one_line(err), err
