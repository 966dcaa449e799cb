"""`affine-train` before its first epoch, where a traceback used to be the last word: Ctrl-C in the first seconds (while
torch is imported, while the data loads, while the fork server of `--nproc` starts), SIGTERM and Ctrl-C during the
first extraction of the data, a file-size limit and a full disk while extracting, processes given too little time to
meet, and memory that runs out. Each ends with one line that names the cause and the fix, the right exit status (2 for
a refusal, 128 + the signal's number for a signal), and leaves nothing behind.

Real processes where the fault needs one: the installed `affine-train` for Ctrl-C, a process under a memory limit
(`RLIMIT_AS`), processes under a file-size limit or given signals (`tiny_train.Forked`); the rest runs in this
process. The process that runs out of memory starts with the first test and runs beside the others: most of its time
is torch's import.
"""
import contextlib, os, re, shutil, signal, subprocess, sys, time
from pathlib import Path

import pytest

import affine_nb.cli as cli
from affine_nb import integrity
from affine_nb.integrity import FILES, check_files, checked_split
from tiny_train import ForkedRun, default_sigint, descendants, finish, one_line, run_in_process, small_split, wait_for

AFFINE_TRAIN = str(Path(sys.executable).parent / 'affine-train')
STARTING = "affine-train: interrupted (SIGINT) while starting; nothing was written"
STOPPED = "affine-train: interrupted (SIGINT); no epoch was complete, so there is no checkpoint to resume from"

OUT_OF_MEMORY = """
import re, resource, sys
import affine_nb.cli as cli, affine_nb.runs, affine_nb.integrity     # what a run imports: torch, before the limit
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


def gz_only(folder: Path, placeholders: bool = False) -> Path:
    """A data folder with the four .gz files and nothing extracted (`placeholders`: empty test files, the training .gz
    alone real)."""
    raw = folder / 'FashionMNIST' / 'raw'
    raw.mkdir(parents=True)
    for name in FILES:
        if placeholders and name.startswith('t10k'): (raw / name).touch()
        else: shutil.copy(check_files() / name, raw / name)
    return raw


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
    monkeypatch.setattr(integrity, 'checked_split', interrupted)      # what `main` imports when it starts
    # Ctrl-C as a shell's foreground command has it: a test run started with `&` inherits it ignored
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try: status, _, err = in_process('--epochs', 1)
    except KeyboardInterrupt: pytest.fail("KeyboardInterrupt: the traceback a command would print")
    finally: signal.signal(signal.SIGINT, previous)
    assert status == 130 and one_line(err) == STARTING, err


def test_signals_during_the_first_extraction(tmp_path):
    for signum in (signal.SIGTERM, signal.SIGINT):
        raw = gz_only(tmp_path / signal.Signals(signum).name)
        # forked: no start of torch
        process = ForkedRun(['--epochs', 1, '--data', raw.parent.parent, '--out', tmp_path / 'run'])
        wait_for(lambda: any(p.name.endswith('.partial') for p in raw.iterdir()), process, poll=0.001, timeout=60)
        process.send_signal(signum)
        status, _, err = finish(process)
        assert status == 128 + signum, err
        assert one_line(err) == (f"interrupted ({signal.Signals(signum).name}) while extracting "
                                 f"train-images-idx3-ubyte.gz in {raw}; nothing was left half-written: run again")
        assert sorted(p.name for p in raw.iterdir()) == sorted(FILES)


def test_file_size_limit_while_extracting(tmp_path):
    raw = gz_only(tmp_path / 'data')
    status, _, err = finish(ForkedRun(['--epochs', 1, '--data', raw.parent.parent, '--out', tmp_path / 'run'],
                                      fsize=1_000_000))
    assert status == 2, err
    assert one_line(err).startswith(f"affine-train: error: cannot extract train-images-idx3-ubyte in {raw}: it is "
                                    f"larger than the file-size limit of this process (ulimit -f)"), err
    assert 'no space' not in err and sorted(p.name for p in raw.iterdir()) == sorted(FILES)


@pytest.fixture
def small_disk(tmp_path):
    "A 30 MB filesystem (tmpfs; mounting needs root): room for the training .gz, not for what it extracts to."
    if os.geteuid() != 0 or not shutil.which('mount'): pytest.skip("mounting a small filesystem needs root")
    disk = tmp_path / 'disk'; disk.mkdir()
    done = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=30m', 'tmpfs', str(disk)], capture_output=True,
                          text=True)
    if done.returncode != 0: pytest.skip(f"no tmpfs here: {done.stderr.strip()}")
    yield disk
    subprocess.run(['umount', str(disk)], check=True)


def test_full_disk_while_extracting(small_disk, tmp_path):
    raw = gz_only(small_disk, placeholders=True)
    with pytest.raises(OSError) as failed: checked_split(True, small_disk)
    assert str(failed.value).startswith(f"no space left on {raw} to extract train-images-idx3-ubyte: free some space "
                                        f"there"), failed.value
    status, _, err = run_in_process(cli.main, '--data', small_disk, '--out', tmp_path / 'run')
    assert status == 2 and one_line(err).startswith(f"affine-train: error: no space left on {raw}"), err
    assert sorted(p.name for p in raw.iterdir()) == sorted(FILES)


def test_timeout_too_short_for_the_processes_to_meet(tmp_path):
    status, _, err = finish(ForkedRun(['--epochs', 1, '--nproc', 2, '--threads', 1, '--timeout', 0.001,
                                       '--out', tmp_path / 'run']))
    line = one_line(err)                  # the processes time out while they meet, or at their first collective
    assert status == 2 and 'the timeout of 0.001 s' in line and "give them more time (--timeout SECONDS" in line, err


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
