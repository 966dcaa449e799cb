"""`affine-train` on the machine it is given, where a traceback or a wrong line used to be the last word: closed and
full output streams, a folder whose name is not UTF-8 printed to a strict stream, a read-only filesystem, a file-size
limit under a run resumed into a new folder, a run resumed on a machine with fewer cores than its threads, and a run
in portable mode resumed with the command it printed. Each ends with one line that names the cause and the fix, or
with the bits of a straight run.

Real processes run the real command line on 2 000 images (`tiny_train.py`) where the fault needs one (a closed
stderr, a full stdout, fewer cores, a file-size limit, portable mode, which restarts the process); the rest runs in
this process. Every child gets the default SIGINT back first: one started with `&` by a non-interactive shell
inherits it ignored.
"""
import contextlib, io, json, os, shlex, shutil, signal, subprocess
from pathlib import Path

import pytest

import affine_nb.cli as cli
from affine_nb.checkpoints import load_checkpoint
from affine_nb.integrity import FILES, check_files
from affine_nb.config import RunConfig
from affine_nb.repro import PORTABLE_ENV, portable_active, portable_env
from affine_nb.training import fit
from tiny_train import SMALL, Forked, default_sigint, final_digest, finish, one_line, small_split, started
from tiny_train import wait_for_file

EPOCHS = 2


@pytest.fixture(scope='module')
def finished_run(tmp_path_factory):
    """A run of one epoch into a folder named with the byte 0xff, its last line on a stdout that encodes UTF-8 strictly,
    as under PYTHONIOENCODING=utf-8: the folder, the exit status, what stdout received, and stderr."""
    folder = Path(os.fsdecode(bytes(tmp_path_factory.mktemp('names')) + b'/run\xff'))
    stdout = io.TextIOWrapper(io.BytesIO(), encoding='utf-8', errors='strict')
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(io.StringIO()) as err:
        try: status = cli.main(['--quiet', *SMALL, '--epochs', '1', '--out', str(folder)])
        except SystemExit as e: status = e.code
        except Exception as e: status = repr(e)               # what ended it instead: the test of the line shows it
    return folder, status, stdout.buffer.getvalue(), err.getvalue()


def test_folder_name_not_utf8(finished_run):
    "The last line names the folder by its own bytes, rather than ending in a UnicodeEncodeError."
    folder, status, out, err = finished_run
    assert status == 0 and err == '', (status, err)
    assert out.endswith(b'metrics.json, model.pt, checkpoint.pt and curves in ' + os.fsencode(folder) + b'\n'), out
    assert os.listdir(folder.parent) == ['run\udcff']


def test_full_disk_under_a_resume_into_a_new_folder(tmp_path, finished_run):
    """That run's ending written again into a new folder, under a file-size limit the copy of its checkpoint exceeds:
    the line names the checkpoint it resumed from, which is intact, not "no checkpoint"."""
    source, new = finished_run[0] / 'checkpoint.pt', tmp_path / 'new'
    (status, _, err), = Forked(tmp_path, [dict(argv=['--resume', source, '--out', new], fsize=1_000_000)]).finish()
    expected = (f"affine-train: checkpoint.pt is over this process's file-size limit (ulimit -f) in {new}; raise the "
                f"limit; no checkpoint was saved in {new}; the checkpoint it resumed from (epoch 1) is intact: finish "
                f"the run with --resume {shlex.quote(str(source))} --out {new}")
    assert status == 1, err
    assert one_line(err) == expected.encode('utf-8', 'backslashreplace').decode(), err     # stderr escapes the 0xff
    assert load_checkpoint(source)['epoch'] == 1 and not new.exists()


def test_streams_closed_or_full(tmp_path):
    "stderr closed (`2>&-`) with progress bars, and at a stop; stdout on /dev/full after a finished run."
    forked = Forked(tmp_path, [dict(argv=['--epochs', 2, '--threads', 1, '--out', tmp_path / 'bars'],
                                    quiet=False, stderr=None),
                               dict(argv=['--epochs', 1, '--threads', 1, '--out', tmp_path / 'full'],
                                    stdout='/dev/full')])
    def no_stderr(): default_sigint(); os.close(2)
    # started with 2>&-
    process = started('--epochs', 40, '--threads', 1, '--out', tmp_path / 'stopped', preexec=no_stderr)
    wait_for_file(tmp_path / 'stopped' / 'checkpoint.pt')
    process.send_signal(signal.SIGTERM)
    status, out, _ = finish(process)
    assert status == 143 and out == '', out                      # nothing to say it with, and stdout is for results
    (status, out, _), (full, _, err) = forked.finish()
    assert status == 0 and out.startswith('test accuracy'), out
    assert full == 1 and one_line(err) == (f"affine-train: cannot write to standard output (No space left on device); "
                                           f"the run's files are all written in {tmp_path / 'full'}")
    assert final_digest(tmp_path / 'full') and (tmp_path / 'full' / 'model.pt').exists()


@pytest.fixture
def read_only(tmp_path):
    "A folder on a read-only filesystem (a read-only bind mount; needs root, as CI has), holding the four .gz files."
    if os.geteuid() != 0 or not shutil.which('mount'): pytest.skip("a read-only mount needs root")
    source, mounted = tmp_path / 'source', tmp_path / 'read-only'
    raw = source / 'FashionMNIST' / 'raw'
    raw.mkdir(parents=True); mounted.mkdir()
    for name in FILES: shutil.copy(check_files() / name, raw / name)
    done = subprocess.run(f"mount --bind {source} {mounted} && mount -o remount,ro,bind {mounted}", shell=True,
                          capture_output=True)
    if done.returncode != 0: pytest.skip(f"no read-only mount here: {done.stderr.strip()}")
    yield mounted
    subprocess.run(['umount', str(mounted)], check=True)


def test_read_only_filesystem(read_only, capsys):
    for argv, message in [(['--out', str(read_only / 'run')], f"cannot write to the output folder {read_only / 'run'}"),
                          (['--data', str(read_only)],
                           f"cannot extract train-images-idx3-ubyte.gz in {read_only / 'FashionMNIST' / 'raw'}: "
                           f"the folder is read-only")]:
        with pytest.raises(SystemExit) as stopped: cli.main(argv)
        err = capsys.readouterr().err
        assert stopped.value.code == 2 and message in one_line(err), err


def test_resumed_with_its_threads_on_fewer_cores(tmp_path, in_process):
    """A run of 2 threads, stopped, then finished in a process that may use one core: the bits of a straight run. Large
    batches make few steps: two threads on one core wait for each other at every step."""
    folder = tmp_path / 'my run'
    checkpoint = folder / 'checkpoint.pt'
    (status, out, err), = Forked(tmp_path, [dict(argv=['--epochs', EPOCHS, '--threads', 2, '--batch-size', 500,
                                                       '--stop-after', 1, '--out', folder])]).finish()
    assert status == 0 and out.strip().endswith(f"continue with: affine-train --resume '{checkpoint}'"), (out, err)

    status, _, err = in_process('--resume', checkpoint, '--threads', 1)
    assert (status == 2 and 'its bits depend on the thread count' in one_line(err)
            and 'resume without --threads' in err), err

    (status, out, err), = Forked(tmp_path, [dict(argv=['--resume', checkpoint], one_core=True)]).finish()
    assert status == 0, err
    assert 'this run trains with 2 threads on the 1 CPU core(s) here' in one_line(err)
    assert final_digest(folder) == fit(RunConfig(epochs=EPOCHS, threads=2, batch_size=500), small_split(True),
                                       small_split(False))[1]['weights_sha256']


@pytest.mark.skipif(portable_active(), reason="runs the command outside portable mode")
def test_portable_run_resumed_with_the_printed_command(tmp_path, in_process):
    env = {k: v for k, v in os.environ.items() if k not in PORTABLE_ENV}
    folder, big = tmp_path / 'half', ['--batch-size', 500, '--threads', 1]    # few steps: the pinned kernels are slower
    jobs = [dict(argv=['--epochs', 2, *big, '--out', tmp_path / 'straight']),
            dict(argv=['--portable', '--epochs', 2, *big, '--stop-after', 1, '--out', folder])]
    # started portable: no restart
    (status, _, err), (half, out, half_err) = Forked(tmp_path, jobs, env=portable_env(env)).finish()
    if status == 2 and 'needs an x86-64 CPU with AVX2' in err: pytest.skip(err.strip())
    assert status == 0 and half == 0, (err, half_err)
    printed = out.strip().split('continue with: affine-train ')[1]
    assert printed == f"--resume {folder / 'checkpoint.pt'}"
    status, _, err = finish(started(*printed.split(' '), env=env))           # the command as printed: no --portable
    assert status == 0, err
    metrics = json.loads((folder / 'metrics.json').read_text())
    assert metrics['environment']['kernels']['portable'] is True
    assert final_digest(folder) == final_digest(tmp_path / 'straight')

    status, _, err = in_process('--epochs', 2, '--stop-after', 1, '--out', tmp_path / 'native')
    status, _, err = in_process('--resume', tmp_path / 'native' / 'checkpoint.pt', '--portable')
    assert status == 2 and '--portable: this run trains with the native kernels' in one_line(err), err
