"""A run touches only what it wrote, and a checkpoint is data: real `affine-train` processes (on the first 2 000 images,
`tiny_train.py`) given folders that hold a user's files or another run, and checkpoints that are empty, pickled, edited
or of the wrong shapes. Each must end with exit status 2 and one line that names the real cause, before any work, and
leave every file as it was.

The processes are forked from one that has imported the package (`tiny_train.Forked`). A checkpoint "sealed again"
below is one whose content was changed and whose seal was recomputed to match, as a forger would: the checks behind
the seal must still refuse it (a tensor of the wrong shape handed to AdamW's fused kernel corrupts memory rather than
raising an error).
"""
import hashlib, json, shutil, subprocess, sys
from pathlib import Path

import pytest
import torch

from affine_nb.checkpoints import read_checkpoint, seal
from affine_nb.integrity import save_atomic
from affine_nb.distributed import RunConfig as TrainConfig
from affine_nb.runs import train_run

sys.path.insert(0, str(Path(__file__).parent))
from tiny_train import Forked, small_split



def contents(folder: Path) -> dict:
    "Every file below `folder` (folders too), with the sha256 of its bytes."
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else 'folder'
            for p in sorted(folder.rglob('*'))}


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    "A finished run and a run stopped after its first epoch, each in its own folder."
    root = tmp_path_factory.mktemp('runs')
    cfg, train, test = TrainConfig(epochs=2), small_split(True), small_split(False)
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
    (mine / 'cache.partial').mkdir(); (mine / 'cache.partial' / 'a').write_bytes(b'x'); (mine / 'dataset.partial').write_bytes(b'y')
    figures = tmp / 'figures'; figures.mkdir()
    for name in ('loss_over_epochs.png', 'accuracy_over_epochs.png', 'learning_rate.png', 'confusion_matrix.png'): (figures / name).write_bytes(name.encode())
    shutil.copy(runs / 'stopped' / 'checkpoint.pt', runs / 'finished' / 'x.pt')               # another run's checkpoint, copied in
    (tmp / 'empty.pt').write_bytes(b'')
    torch.save({'epoch': 1, 'payload': Payload()}, tmp / 'pickled.pt')
    small = {i: s | dict(exp_avg=torch.zeros(2)) for i, s in optimizer['state'].items()}
    nan = model | {name: torch.full_like(t, float('nan')) for name, t in model.items() if t.is_floating_point()}
    return [(['--out', mine], "holds files that are not this run's (cache.partial, dataset.partial, video.mp4.partial)", mine),
            (['--out', figures], "holds files that are not this run's (accuracy_over_epochs.png, confusion_matrix.png, learning_rate.png, …)", figures),
            (['--resume', runs / 'finished' / 'x.pt'], f"{runs / 'finished'} holds another run", runs),
            (['--resume', tmp / 'empty.pt', '--out', tmp / 'new'], "is not a readable checkpoint, not a whole file that torch.save wrote (EOFError: the file is empty or cut short)", runs),
            (['--resume', '/dev/null', '--out', tmp / 'new'], "/dev/null is not a readable checkpoint", runs),
            (['--resume', tmp / 'pickled.pt', '--out', tmp / 'new'], "refused since loading it could run code (Unsupported global: GLOBAL print)", runs),
            (['--resume', resealed(state, tmp / 'adam.pt', optimizer=optimizer | dict(state=small)), '--out', tmp / 'new'],
             "['exp_avg'] is torch.float32 [2], not torch.float32 [16, 1, 4, 4]", runs),
            (['--resume', resealed(state, tmp / 'nan.pt', model=nan), '--out', tmp / 'new'], "holds NaN or infinite values", runs),
            (['--resume', resealed(state, tmp / 'half.pt', model={k: v.half() for k, v in model.items()}), '--out', tmp / 'new'], "is torch.float16", runs),
            (['--resume', resealed(state, tmp / 'no-adam.pt', optimizer=optimizer | dict(state={})), '--out', tmp / 'new'], "['state'] lacks", runs),
            (['--resume', edited(state, tmp / 'history.pt', history=[]), '--out', tmp / 'new'], "was changed after affine-train wrote it", runs)]


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
    done = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', str(folder)], capture_output=True, text=True)
    if done.returncode != 0: pytest.skip(f"no tmpfs here: {done.stderr.strip()}")
    yield folder
    subprocess.run(['umount', str(folder)], check=True)


def test_a_disk_that_fills_loses_nothing(small_disk, runs, tmp_path):
    folder = small_disk / 'run'
    (status, _, err), = Forked(tmp_path, [dict(argv=['--epochs', 2, '--out', folder])]).finish()
    lines = err.strip().splitlines()
    assert status == 1 and len(lines) == 1, err[-2000:]
    assert lines[0] == (f"affine-train: no space left on {folder} to write checkpoint.pt (No space left on device); the last complete "
                        f"checkpoint (epoch 1) is intact: resume with --resume {folder / 'checkpoint.pt'}")
    assert sorted(p.name for p in folder.iterdir()) == ['checkpoint.pt']              # no half-written file takes the space
    moved = tmp_path / 'moved'
    shutil.copytree(folder, moved)                                                    # finished where there is room
    _, metrics = train_run(TrainConfig(epochs=2), moved, small_split(True), small_split(False), resume=moved / 'checkpoint.pt')
    assert metrics['weights_sha256'] == json.loads((runs / 'finished' / 'metrics.json').read_text())['weights_sha256']
