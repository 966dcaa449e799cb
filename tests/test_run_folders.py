"""A run folder and its checkpoint: a run touches only what it wrote, writes nothing outside its folder, never sets a
run back, and treats a checkpoint as data. Real `affine-train` processes (on the first 2 000 images, `tiny_train.py`)
are given folders that hold a user's files or another run, checkpoints that are empty, pickled, edited or of the wrong
shapes, a disk that fills, links planted at the names a run writes to, a resume that waited while another process
finished the run, a damaged `model.pt`, folders inside other runs' folders, loops of links and a folder named like an
option. A refusal ends with exit status 2 and one line that names the real cause, before any work, and leaves every
file as it was; a finished run's files are checked against its own record.

The processes are forked from one that has imported the package (`tiny_train.Forked`). A checkpoint "sealed again"
below is one whose content was changed and whose seal was recomputed to match, as a forger would: the checks behind
the seal must still refuse it (a tensor of the wrong shape handed to AdamW's fused kernel corrupts memory rather than
raising an error).
"""
import contextlib, hashlib, json, os, shlex, shutil, signal, subprocess
from pathlib import Path

import pytest
import torch

import affine_nb.cli as cli
from affine_nb.checkpoints import load_checkpoint, read_checkpoint, seal
from affine_nb.integrity import EXTRACTED, FILES, check_files, save_atomic, temporary_name
from affine_nb.model import make_model
from affine_nb.runs import CURVES, RUN_FILES, ended, lock_folder, train_run
from affine_nb.training import weights_sha256
from tiny_train import SMALL, Forked, one_line, run_in_process, running, small_settings, small_split, wait_for


def contents(folder: Path) -> dict:
    "Every file below `folder` (folders too), with the sha256 of its bytes."
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else 'folder'
            for p in sorted(folder.rglob('*'))}


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    "A finished run and a run stopped after its first epoch, each in its own folder."
    root = tmp_path_factory.mktemp('runs')
    cfg, train, test = small_settings(epochs=2), small_split(True), small_split(False)
    train_run(cfg, root / 'finished', train, test)
    train_run(cfg, root / 'stopped', train, test, stop_after=1)
    return root


def resealed(state: dict, path: Path, **changes) -> Path:
    save_atomic(seal(state | changes), path)
    return path


def edited(state: dict, path: Path, **changes) -> Path:
    save_atomic(state | changes, path)
    return path


class Payload:
    def __reduce__(self): return (print, ('this ran while loading',))


def cases(runs: Path, tmp: Path) -> list[tuple[list, str, Path]]:
    "(affine-train arguments, what the one line must say, the folder that must stay as it was)."
    state = read_checkpoint(runs / 'stopped' / 'checkpoint.pt')
    optimizer, model = state['optimizer'], state['model']
    mine = tmp / 'mine'; mine.mkdir()
    (mine / 'video.mp4.partial').write_bytes(b'a video being downloaded')
    (mine / 'cache.partial').mkdir(); (mine / 'cache.partial' / 'a').write_bytes(b'x')
    (mine / 'dataset.partial').write_bytes(b'y')
    figures = tmp / 'figures'; figures.mkdir()
    for name in ('loss_over_epochs.png', 'accuracy_over_epochs.png', 'learning_rate.png', 'confusion_matrix.png'):
        (figures / name).write_bytes(name.encode())
    shutil.copy(runs / 'stopped' / 'checkpoint.pt', runs / 'finished' / 'x.pt')    # another run's checkpoint, copied in
    (tmp / 'empty.pt').write_bytes(b'')
    torch.save({'epoch': 1, 'payload': Payload()}, tmp / 'pickled.pt')
    small = {i: s | dict(exp_avg=torch.zeros(2)) for i, s in optimizer['state'].items()}
    nan = model | {name: torch.full_like(t, float('nan')) for name, t in model.items() if t.is_floating_point()}
    return [(['--out', mine], "holds files that are not this run's (cache.partial, dataset.partial, video.mp4.partial)",
             mine),
            (['--out', figures], "holds files that are not this run's (accuracy_over_epochs.png, confusion_matrix.png, "
                                 "learning_rate.png, …)", figures),
            (['--resume', runs / 'finished' / 'x.pt'], f"{runs / 'finished'} holds another run", runs),
            (['--resume', tmp / 'empty.pt', '--out', tmp / 'new'],
             "is not a readable checkpoint, not a whole file that torch.save wrote (EOFError: the file is empty or cut "
             "short)", runs),
            (['--resume', '/dev/null', '--out', tmp / 'new'], "/dev/null is not a readable checkpoint", runs),
            (['--resume', tmp / 'pickled.pt', '--out', tmp / 'new'],
             "refused since loading it could run code (Unsupported global: GLOBAL print)", runs),
            (['--resume', resealed(state, tmp / 'adam.pt', optimizer=optimizer | dict(state=small)),
              '--out', tmp / 'new'],
             "['exp_avg'] is torch.float32 [2], not torch.float32 [16, 1, 4, 4]", runs),
            (['--resume', resealed(state, tmp / 'nan.pt', model=nan), '--out', tmp / 'new'],
             "holds NaN or infinite values", runs),
            (['--resume', resealed(state, tmp / 'half.pt', model={k: v.half() for k, v in model.items()}),
              '--out', tmp / 'new'], "is torch.float16", runs),
            (['--resume', resealed(state, tmp / 'no-adam.pt', optimizer=optimizer | dict(state={})),
              '--out', tmp / 'new'], "['state'] lacks", runs),
            (['--resume', edited(state, tmp / 'history.pt', history=[]), '--out', tmp / 'new'],
             "was changed after affine-train wrote it", runs)]


def test_bad_folders_and_checkpoints_are_refused_before_any_work(runs, tmp_path):
    todo = cases(runs, tmp_path)
    before = {id(folder): contents(folder) for _, _, folder in todo}
    results = Forked(tmp_path, [dict(argv=args) for args, _, _ in todo]).finish()
    for (args, message, folder), (status, out, err) in zip(todo, results):
        lines = err.strip().splitlines()
        assert status == 2 and len(lines) == 1 and 'Traceback' not in err, (args, status, err[-2000:])
        assert message in lines[0], (args, lines[0])
        assert 'learning rate' not in lines[0] and 'Check the documentation' not in lines[0], lines[0]
        assert contents(folder) == before[id(folder)], args
    assert not (tmp_path / 'new').exists()


@pytest.fixture
def small_disk(tmp_path):
    "A folder on a filesystem of 8 MB (a tmpfs; needs root, as CI has): room for one checkpoint (about 5 MB), not two."
    folder = tmp_path / 'disk'
    folder.mkdir()
    done = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', str(folder)], capture_output=True,
                          text=True)
    if done.returncode != 0: pytest.skip(f"no tmpfs here: {done.stderr.strip()}")
    yield folder
    subprocess.run(['umount', str(folder)], check=True)


def test_a_disk_that_fills_loses_nothing(small_disk, runs, tmp_path):
    folder = small_disk / 'run'
    (status, _, err), = Forked(tmp_path, [dict(argv=['--epochs', 2, '--out', folder])]).finish()
    lines = err.strip().splitlines()
    assert status == 1 and len(lines) == 1, err[-2000:]
    assert lines[0] == (f"affine-train: no space left on {folder} to write checkpoint.pt (No space left on device); "
                        f"the last complete checkpoint (epoch 1) is intact: resume with --resume "
                        f"{folder / 'checkpoint.pt'}")
    assert sorted(p.name for p in folder.iterdir()) == ['checkpoint.pt']         # no half-written file takes the space
    moved = tmp_path / 'moved'
    shutil.copytree(folder, moved)                                                    # finished where there is room
    _, metrics = train_run(small_settings(epochs=2), moved, small_split(True), small_split(False),
                           resume=moved / 'checkpoint.pt')
    assert metrics['weights_sha256'] == json.loads((runs / 'finished' / 'metrics.json').read_text())['weights_sha256']


FAST = ['--threads', 1]                  # one thread: the quickest epochs on a shared machine


class Pid:
    "A forked process seen as `wait_for` wants it: `poll()` is None while it runs."
    def __init__(self, pid: int): self.pid = pid
    def poll(self): return None if running(self.pid) else 0


def weights(path: Path) -> str:
    "`weights_sha256` of the weights in `path`, loaded into the recipe's network (an error if they do not load)."
    model = make_model()
    model.load_state_dict(torch.load(path, weights_only=True))
    return weights_sha256(model)


def digest(folder: Path) -> dict:
    "Every file in `folder`: whether it is a link, and the sha256 of its bytes."
    return {p.name: (p.is_symlink(), hashlib.sha256(p.read_bytes()).hexdigest()) for p in sorted(folder.iterdir())}


@pytest.fixture(scope='module')
def half(tmp_path_factory):
    "A run of 2 epochs stopped after the first, in a folder named like an option (`--out=-dash`): (folder, its output)."
    root = tmp_path_factory.mktemp('half')
    with contextlib.chdir(root):
        status, out, err = run_in_process(cli.main, '--quiet', *SMALL, '--epochs', 2, *FAST, '--stop-after', 1,
                                          '--out=-dash')
    assert status == 0, err
    return root / '-dash', out


def copy(folder: Path, to: Path) -> Path:
    shutil.copytree(folder, to)
    return to


def test_links_planted_at_a_runs_temporary_names_are_not_followed(tmp_path):
    folder, outside = tmp_path / 'run', tmp_path / 'outside'
    outside.mkdir()
    forked = Forked(tmp_path, [dict(argv=['--epochs', 3, *FAST, '--out', folder])])
    process = Pid(forked.pids[0])
    wait_for(lambda: (folder / 'checkpoint.pt').exists(), process)
    os.kill(process.pid, signal.SIGSTOP)                       # two epochs before the ending: the links are in time
    try:
        run = read_checkpoint(folder / 'checkpoint.pt')['run']  # the identity, which names the temporary files
        for name in RUN_FILES + CURVES:
            (outside / name).write_bytes(f"a user's {name}".encode())
            temporary_name(folder / name, run).symlink_to(outside / name)
        (outside / 'final').write_bytes(b"a user's file")
        (folder / 'model.pt').symlink_to(outside / 'final')     # at a final name too: the rename replaces the link
        before = digest(outside)
    finally: os.kill(process.pid, signal.SIGCONT)
    (status, _, err), = forked.finish()
    assert status == 0, err
    assert digest(outside) == before                           # nothing outside the folder was written
    assert sorted(p.name for p in folder.iterdir()) == sorted(RUN_FILES + CURVES)
    assert not any(p.is_symlink() for p in folder.iterdir())
    metrics = json.loads((folder / 'metrics.json').read_text())
    assert metrics['finished'] and weights(folder / 'model.pt') == metrics['weights_sha256']


def test_a_resume_that_waited_while_another_finished_the_run_is_refused(half, tmp_path, in_process):
    folder = copy(half[0], tmp_path / 'run')
    checkpoint = folder / 'checkpoint.pt'
    raw = tmp_path / 'data' / 'FashionMNIST' / 'raw'           # the data, with one file that waits for the test
    raw.mkdir(parents=True)
    for name in [*FILES, *EXTRACTED]: (raw / name).symlink_to(check_files() / name)
    late = raw / 'train-labels-idx1-ubyte.gz'
    late.unlink(); os.mkfifo(late)
    forked = Forked(tmp_path, [dict(argv=['--resume', checkpoint, '--data', tmp_path / 'data'])])
    writer = []
    def reading():
        try: writer.append(os.open(late, os.O_WRONLY | os.O_NONBLOCK)); return True
        except OSError: return False                           # (ENXIO: no reader yet)
    wait_for(reading, Pid(forked.pids[0]))                     # it has read the checkpoint (epoch 1), and waits here
    status, out, err = in_process('--resume', checkpoint)      # meanwhile, another process finishes the run
    assert status == 0 and 'after 2 epochs' in out, err
    finished = digest(folder)
    os.set_blocking(writer[0], True)
    with os.fdopen(writer[0], 'wb') as f: f.write((check_files() / late.name).read_bytes())
    (status, out, err), = forked.finish()
    assert status == 2 and one_line(err) == (f"affine-train: error: {folder} holds this run at epoch 2, finished, past "
                                             f"{checkpoint} as this process read it (epoch 1): another process went on "
                                             f"with it meanwhile; nothing to do, nothing rewritten"), (out, err)
    assert digest(folder) == finished and json.loads((folder / 'metrics.json').read_text())['finished'] is True


def test_a_damaged_or_foreign_model_pt_is_written_again_from_the_checkpoint(half, tmp_path, in_process):
    done = copy(half[0], tmp_path / 'done')
    status, _, err = in_process('--resume', done / 'checkpoint.pt')
    assert status == 0, err
    record = json.loads((done / 'metrics.json').read_text())
    cut, foreign = tmp_path / 'cut', tmp_path / 'foreign'
    for folder in (cut, foreign):
        folder.mkdir()
        for p in done.iterdir(): (folder / p.name).write_bytes(p.read_bytes())
    (cut / 'model.pt').write_bytes((done / 'model.pt').read_bytes()[:100])
    torch.save(make_model().state_dict(), foreign / 'model.pt')      # weights of the same network, not this run's
    results = Forked(tmp_path, [dict(argv=['--resume', f / 'checkpoint.pt']) for f in (cut, foreign)]).finish()
    for folder, (status, out, err) in zip((cut, foreign), results):
        assert status == 0 and 'written again from the last checkpoint' in out, (folder, out, err)
        assert weights(folder / 'model.pt') == record['weights_sha256']
        assert ended(folder, load_checkpoint(folder / 'checkpoint.pt'))


def test_out_inside_a_run_or_a_loop_of_links_is_refused(half, tmp_path):
    done, busy = half[0], tmp_path / 'busy'
    busy.mkdir()
    (tmp_path / 'a').symlink_to('b'); (tmp_path / 'b').symlink_to('a')
    loop = f"{tmp_path / 'a'} is a loop of symbolic links ({tmp_path / 'a'} -> {tmp_path / 'b'} -> {tmp_path / 'a'})"
    run = read_checkpoint(done / 'checkpoint.pt')['run']
    fresh = ['--epochs', 1, *FAST, '--out']
    cases = [([*fresh, done / 'inner'], f"{done / 'inner'} is inside {done}, the folder of run {run}"),
             (['--resume', done / 'checkpoint.pt', '--out', done / 'x' / 'y'], f"is inside {done}, the folder of run"),
             ([*fresh, busy / 'inner'], f"{busy / 'inner'} is inside {busy}, which a run is writing into"),
             ([*fresh, tmp_path / 'a'], loop), ([*fresh, tmp_path / 'a' / 'run'], loop)]
    before = digest(done)
    held = lock_folder(busy)                                   # a run holds it, before its first checkpoint
    try: results = Forked(tmp_path, [dict(argv=args) for args, _ in cases]).finish()
    finally: os.close(held)
    for (args, says), (status, out, err) in zip(cases, results):
        assert status == 2 and says in one_line(err), (args, out, err)
    assert digest(done) == before and list(busy.iterdir()) == []


def test_the_printed_resume_command_works_for_a_folder_named_like_an_option(half, tmp_path):
    copy(half[0], tmp_path / '-dash')
    printed = half[1].strip().split('continue with: affine-train ')[1]
    (status, out, err), = Forked(tmp_path, [dict(argv=shlex.split(printed))]).finish()      # as a shell splits it
    assert status == 0 and 'after 2 epochs' in out, (printed, err)
    assert json.loads((tmp_path / '-dash' / 'metrics.json').read_text())['finished'] is True


def test_a_metrics_json_nested_too_deeply_gets_one_line(half, tmp_path, in_process):
    folder = copy(half[0], tmp_path / 'run')
    (folder / 'metrics.json').write_text('[' * 100_000)
    status, out, err = in_process('--resume', folder / 'checkpoint.pt')
    assert status == 2 and f"{folder}/metrics.json is not of this run" in one_line(err), (out, err)
