"""A run folder that writes nothing outside itself, a resume that never sets a run back, and a finished run whose files
are checked against its own record: real `affine-train` processes (on the first 2 000 images, `tiny_train.py`) given
links planted at the names a run writes to, a resume that waited while another process finished the run, a damaged
`model.pt`, folders inside other runs' folders, loops of links, a folder named like an option, and a data folder that
cannot be made.
"""
import contextlib, hashlib, json, os, shlex, shutil, signal
from pathlib import Path

import pytest
import torch

from affine_nb.checkpoints import load_checkpoint, read_checkpoint
from affine_nb.integrity import EXTRACTED, FILES, check_files, temporary_name
from affine_nb.model import make_model
from affine_nb.runs import CURVES, RUN_FILES, ended, lock_folder
from affine_nb.training import weights_sha256

import affine_nb.cli as cli
from tiny_train import Forked, one_line, run_in_process, running, small_split, wait_for

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
    with contextlib.chdir(root), pytest.MonkeyPatch.context() as patch:
        patch.setattr(cli, 'checked_split', small_split)
        status, out, err = run_in_process(cli.main, '--quiet', '--epochs', 2, *FAST, '--stop-after', 1, '--out=-dash')
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


def test_a_data_folder_that_cannot_be_made_is_named_not_the_network(tmp_path, in_process, monkeypatch):
    monkeypatch.chdir(tmp_path)                                # outside a checkout: the default is under the home
    file = tmp_path / 'file'
    file.write_bytes(b'not a folder')
    for variable, value in (('AFFINE_NB_DATA', file), ('HOME', file / 'home')):
        monkeypatch.delenv('AFFINE_NB_DATA', raising=False)
        monkeypatch.setenv(variable, str(value))
        status, _, err = in_process('--download', '--out', tmp_path / 'run')
        assert status == 2 and f"{file} is a file, not a folder" in one_line(err), (variable, err)
        assert 'network' not in err and 'could not download' not in err, err
    assert not (tmp_path / 'run').exists()


def test_a_metrics_json_nested_too_deeply_gets_one_line(half, tmp_path, in_process):
    folder = copy(half[0], tmp_path / 'run')
    (folder / 'metrics.json').write_text('[' * 100_000)
    status, out, err = in_process('--resume', folder / 'checkpoint.pt')
    assert status == 2 and f"{folder}/metrics.json is not of this run" in one_line(err), (out, err)
