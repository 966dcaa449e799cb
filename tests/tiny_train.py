"""`affine-train` on the first 2 000 training and 500 test images: the real command line in a real process, with less
data, for the tests of its mechanics (folders, signals, full disks), which do not need the whole data set.

    python tests/tiny_train.py [affine-train options]

`started` starts such a run as a new Python process; `Forked` starts many at once, each a real process forked from one
that has imported the package already. The rest is what the tests of the commands share: how they wait for a moment,
read a process's one line of stderr, find the processes below one, and read a finished run's digest.
"""
import contextlib, io, json, os, signal, subprocess, sys, tempfile, time
from pathlib import Path

import affine_nb.cli as cli
from affine_nb.config import RunConfig
from affine_nb.integrity import checked_split

SIZES = {True: 2_000, False: 500}
SMALL = ['--train-images', str(SIZES[True]), '--eval-images', str(SIZES[False])]   # the settings that ask for them
ROOT = Path(__file__).resolve().parents[1]          # the checkout
TINY = str(Path(__file__))                          # this script


def small_settings(**changes) -> RunConfig:
    "The settings of a run of `SMALL`, with `changes`: what a checkpoint of the command line's runs here holds."
    return RunConfig(train_images=SIZES[True], eval_images=SIZES[False], **changes)


def small_split(train: bool = True, root=None, download: bool = False):
    "The split the `SMALL` settings train or evaluate on, for runs by `fit` itself."
    return checked_split(train, root, download).subset(SIZES[train])


def default_sigint():
    """In a child: Ctrl-C back to its default (a process started with `&` by a non-interactive shell inherits it
    ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def started(*args, preexec=default_sigint, stdout=subprocess.PIPE, env=None) -> subprocess.Popen:
    "`affine-train --quiet ARGS` on the small data in a new Python process (this script), with the default Ctrl-C."
    return subprocess.Popen([sys.executable, TINY, '--quiet', *map(str, args)], stdout=stdout, stderr=subprocess.PIPE,
                            text=True, preexec_fn=preexec, env=env)


def one_line(err: str) -> str:
    "The one line on stderr, and no traceback."
    lines = err.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in err, err
    return lines[0]


def wait_for_file(path: Path, timeout: float = 120) -> None:
    "Return once `path` exists; fail after `timeout` seconds."
    deadline = time.time() + timeout
    while not path.exists():
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.002)


def final_digest(folder: Path) -> str:
    "The weights digest of the finished run in `folder` (an assertion fails if the run is not finished)."
    metrics = json.loads((folder / 'metrics.json').read_text())
    assert metrics['finished'] is True
    return metrics['weights_sha256']


def wait_for(condition, process, poll: float = 0.005, timeout: float = 120) -> None:
    "Return once `condition()` holds; fail if `process` ends first, or after `timeout` seconds."
    deadline = time.time() + timeout
    while not condition():
        assert process.poll() is None and time.time() < deadline, "the run ended before the moment this test waits for"
        time.sleep(poll)


def descendants(pid: int) -> list[int]:
    "Every process below `pid`, read from /proc: its children, theirs, and so on."
    def children(p):
        try: return [int(c) for task in Path(f'/proc/{p}/task').iterdir()
                     for c in (task / 'children').read_text().split()]
        except OSError: return []
    found, todo = [], [pid]
    while todo: todo += (new := children(todo.pop())); found += new
    return found


def running(pid: int) -> bool:
    "Whether `pid` is a live process (a zombie, ended but not yet reaped, is not)."
    try: return Path(f'/proc/{pid}/stat').read_text().rpartition(') ')[2][0] != 'Z'
    except OSError: return False


def finish(process, timeout: float = 300) -> tuple[int, str, str]:
    "(exit status, stdout, stderr) of `process` once it has ended."
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out or '', err


def run_in_process(command, *argv) -> tuple[int, str, str]:
    "`command(ARGV)`, a command's `main`, run by this process: (exit status, stdout, stderr)."
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: status = command(list(map(str, argv)))
        except SystemExit as e: status = e.code
    return status, out.getvalue(), err.getvalue()


ZYGOTE = f"""
import json, os, signal, sys, traceback
sys.path.insert(0, {str(Path(__file__).parent)!r})
import affine_nb.cli as cli
from tiny_train import SMALL
for line in sys.stdin:                   # one batch of jobs a line: their pids, then their exit statuses
    pids = []
    for job in json.loads(line):
        sys.stdout.flush()
        if (pid := os.fork()): pids.append(pid); continue
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.chdir(job['cwd'])
        for fd, path in ((1, job['stdout']), (2, job['stderr'])):
            if path is None: os.close(fd); continue
            f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC); os.dup2(f, fd); os.close(f)
        if job['one_core']: os.sched_setaffinity(0, {{min(os.sched_getaffinity(0))}})
        if job['fsize']:                 # files over this size fail with EFBIG
            import resource; signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (job['fsize'], -1))
        sys.argv = ['affine-train'] + ['--quiet'] * job['quiet'] + SMALL + job['argv']  # as from a shell
        try: code = cli.main()
        except SystemExit as e: code = e.code
        except BaseException: traceback.print_exc(); code = 1
        for stream in (sys.stdout, sys.stderr):
            try: stream.flush()
            except Exception: pass
        os._exit(code if isinstance(code, int) else 1)
    print(json.dumps(pids), flush=True)
    print(json.dumps([os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]), flush=True)
"""
IDLE: dict = {}                          # environment -> zygotes waiting for their next batch


class Forked:
    """`affine-train` processes forked from one that has imported the package already (importing torch takes most of a
    process's start; that process serves the next batch too): real processes, with real signals and streams, from
    `main` on. Each job: argv, and where its stdout and stderr go (None: closed), whether it may use one core only.
    `env`: the environment they start in."""
    def __init__(self, tmp: Path, jobs: list[dict], env: dict | None = None):
        self.jobs = [dict(quiet=True, one_core=False, fsize=None, cwd=str(tmp), stdout=str(tmp / f'{i}.out'),
                          stderr=str(tmp / f'{i}.err')) | job
                     for i, job in enumerate(jobs)]
        for job in self.jobs: job['argv'] = list(map(str, job['argv']))
        self.key = tuple(sorted(env.items())) if env is not None else None
        idle = IDLE.setdefault(self.key, [])
        self.zygote = idle.pop() if idle else subprocess.Popen(
            [sys.executable, '-c', ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        self.zygote.stdin.write(json.dumps(self.jobs) + '\n'); self.zygote.stdin.flush()
        self.pids = json.loads(self.zygote.stdout.readline())

    def finish(self) -> list[tuple[int, str, str]]:
        "(exit status, stdout, stderr) of every job."
        statuses = json.loads(self.zygote.stdout.readline())
        IDLE[self.key].append(self.zygote)
        read = lambda path: Path(path).read_text() if path and not path.startswith('/dev/') else ''
        return [(status, read(job['stdout']), read(job['stderr'])) for status, job in zip(statuses, self.jobs)]


class ForkedRun:
    """One run of `Forked`, used like a `subprocess.Popen`: `pid`, `send_signal`, `kill`, `poll`, `communicate`,
    `returncode`."""
    def __init__(self, argv: list, **job):
        self.forked, self.returncode = Forked(Path(tempfile.mkdtemp()), [dict(argv=argv) | job]), None
        self.pid = self.forked.pids[0]
    def send_signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError): os.kill(self.pid, signum)     # ended already: as Popen does
    def kill(self) -> None: self.send_signal(signal.SIGKILL)
    def poll(self) -> int | None:
        if running(self.pid): return None
        self.communicate()
        return self.returncode
    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        if not hasattr(self, 'result'): (self.returncode, *self.result), = self.forked.finish()
        return tuple(self.result)


if __name__ == '__main__':                        # `affine-train` itself, as a shell starts it, on the small data
    sys.argv[1:1] = SMALL
    sys.exit(cli.main())
