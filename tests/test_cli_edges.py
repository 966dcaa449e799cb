"""`affine-train` at its edges, where a traceback used to be the last word: Ctrl-C in the first seconds (while torch is
imported, while the data loads, while the fork server of `--nproc` starts), memory that runs out, a folder whose name
is not UTF-8 printed to a strict stream, an `--out` that looks like an option handed to the processes of `--nproc`, a
`--timeout` past what c10d can count, and a full disk under a run resumed into a new folder. Each ends with one line
that names the cause and the fix.

Real processes where the fault needs one: the installed `affine-train` for Ctrl-C, a process under a memory limit
(`RLIMIT_AS`), one under a file-size limit (`RLIMIT_FSIZE`, `tiny_train.Forked`); the rest runs in this process. The
process that runs out of memory starts with the first test and runs beside the others: most of its time is torch's
import.
"""
import contextlib, io, os, re, shlex, signal, subprocess, sys, time
from pathlib import Path

import pytest

import affine_nb.cli as cli
from affine_nb.checkpoints import load_checkpoint

sys.path.insert(0, str(Path(__file__).parent))
from tiny_train import Forked, default_sigint, descendants, finish, one_line, small_split

AFFINE_TRAIN = str(Path(sys.executable).parent / 'affine-train')
STARTING = "affine-train: interrupted (SIGINT) while starting; nothing was written"
STOPPED = "affine-train: interrupted (SIGINT); no epoch was complete, so there is no checkpoint to resume from"

OUT_OF_MEMORY = """
import re, resource, sys
import affine_nb.cli as cli
size = int(re.search(r'VmSize:\\s+(\\d+)', open('/proc/self/status').read())[1]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (size + 1_000_000_000, resource.RLIM_INFINITY))     # 1 GB more than the imports
sys.argv[0] = 'affine-train'
sys.exit(cli.main())
"""


@pytest.fixture(scope='module')
def out_of_memory_run(tmp_path_factory):
    "`affine-train`, a batch of 60 000 images (all the training set), in a process that may use 1 GB past its imports."
    out = tmp_path_factory.mktemp('memory') / 'run'
    argv = ['--quiet', '--batch-size', '60000', '--threads', '1', '--out', str(out)]
    process = subprocess.Popen([sys.executable, '-c', OUT_OF_MEMORY, *argv], text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    yield process, out
    if process.poll() is None: process.kill(); process.wait()


def torch_mapped(pid: int) -> bool:
    "Whether process `pid` has begun to import torch (its libraries are mapped): the command's first lines have run."
    with contextlib.suppress(OSError): return os.path.join('torch', 'lib', '') in Path(f'/proc/{pid}/maps').read_text()
    return False


def fork_server_started(pid: int) -> bool:
    "Whether the `--nproc` run `pid` has started its fork server, which then imports torch."
    def command(p):
        try: return Path(f'/proc/{p}/cmdline').read_text()
        except OSError: return ''
    return any('multiprocessing.forkserver' in command(p) for p in descendants(pid))


def test_ctrl_c_while_starting(tmp_path, out_of_memory_run):
    """Ctrl-C from a terminal (to the whole process group) as soon as torch's libraries are mapped, 0.3 s later, and
    while the fork server of `--nproc 2` imports torch: one line, status 130, no folder. The moments are read from
    /proc, not from a clock: under load, Python's own start (its site import, which no command can change) can take
    longer than a fixed delay."""
    runs = [(torch_mapped, 0.0, [], STARTING), (torch_mapped, 0.3, [], STARTING),
            (fork_server_started, 0.2, ['--nproc', '2'], STOPPED)]
    folders = [tmp_path / f'run{i}' for i in range(len(runs))]
    processes = [subprocess.Popen([AFFINE_TRAIN, '--quiet', '--epochs', '50', *more, '--out', str(folder)], text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=default_sigint,
                                  start_new_session=True) for folder, (_, _, more, _) in zip(folders, runs)]
    waiting, due, deadline = dict(enumerate(runs)), {}, time.monotonic() + 60
    while waiting or due:                      # (a folder made: the run began, and its line will say the moment passed)
        assert time.monotonic() < deadline, "the moments never came"
        assert all(processes[i].poll() is None for i in [*waiting, *due]), "a run ended before its moment"
        for i, (reached, delay, _, _) in list(waiting.items()):
            if reached(processes[i].pid) or folders[i].exists(): due[i] = time.monotonic() + delay; del waiting[i]
        for i, when in list(due.items()):
            if time.monotonic() >= when: os.killpg(processes[i].pid, signal.SIGINT); del due[i]     # as a terminal does
        time.sleep(0.001)
    for process, (reached, delay, more, line) in zip(processes, runs):
        status, out, err = finish(process, timeout=60)
        assert status == 130 and out == '', (reached.__name__, delay, status, err)
        assert one_line(err) == line, (reached.__name__, err)
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_while_the_data_loads(in_process, monkeypatch):
    "A real SIGINT to this process while the command reads the data: the same line, status 130."
    def interrupted(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)                                         # (the handler runs at once: the command never gets here)
        return small_split(*args, **kwargs)
    monkeypatch.setattr(cli, 'checked_split', interrupted)
    try: status, _, err = in_process('--epochs', 1)
    except KeyboardInterrupt: pytest.fail("KeyboardInterrupt: the traceback a command would print")
    assert status == 130 and one_line(err) == STARTING, err


@pytest.fixture(scope='module')
def finished_run(tmp_path_factory):
    """A run of one epoch into a folder named with the byte 0xff, its last line on a stdout that encodes UTF-8 strictly,
    as under PYTHONIOENCODING=utf-8: the folder, the exit status, what stdout received, and stderr."""
    folder = Path(os.fsdecode(bytes(tmp_path_factory.mktemp('names')) + b'/run\xff'))
    stdout = io.TextIOWrapper(io.BytesIO(), encoding='utf-8', errors='strict')
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(stdout), \
            contextlib.redirect_stderr(io.StringIO()) as err:
        patch.setattr(cli, 'checked_split', small_split)
        try: status = cli.main(['--quiet', '--epochs', '1', '--out', str(folder)])
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


def test_out_like_an_option_handed_to_the_processes(tmp_path, in_process, monkeypatch):
    "`--nproc 2 --out=-dash`: the processes get `-dash` as the folder, not as an option they cannot parse."
    handed = []
    monkeypatch.setattr(cli, 'launch', lambda fn, nproc, argv, **kw: handed.append(argv))    # their argv, no processes
    monkeypatch.chdir(tmp_path)
    status, _, err = in_process('--nproc', 2, '--epochs', 1, '--out=-dash')
    assert status == 0 and err == '', err
    assert cli.make_parser().parse_args(handed[0]).out == '-dash'
    assert os.listdir() == []


def test_timeout_past_what_c10d_counts(tmp_path, in_process, monkeypatch):
    "c10d's deadline overflows past about 9.2e9 s (Python's timedelta past 8.6e13 s): refused up front, in one line."
    monkeypatch.setattr(cli, 'launch', lambda *args, **kw: pytest.fail("the processes were started"))
    for timeout in ('1e10', '1e13', '1e14', 'inf'):
        status, _, err = in_process('--nproc', 2, '--epochs', 1, '--out', tmp_path / 'run', '--timeout', timeout)
        assert status == 2, (timeout, err)
        assert one_line(err).startswith("affine-train: error: --timeout must be a positive number of seconds, at most "
                                        "10**9 (about 32 years), got "), err
    assert os.listdir(tmp_path) == []


def test_out_of_memory(out_of_memory_run):
    "The run the first test started: one line that says so, how much was asked for, and the fix; status 1; no folder."
    process, out = out_of_memory_run
    status, _, err = finish(process, timeout=120)
    line = one_line(err)
    assert status == 1, err
    assert re.fullmatch(r"affine-train: out of memory \([\d.]+ MB more could not be allocated\): a batch of 60000 "
                        r"images needs more memory than this process can have; start a new run with a smaller "
                        r"--batch-size; no epoch was complete, so there is no checkpoint to resume from", line), line
    assert not out.exists()
