"""`affine-train` under real faults, as separate processes: Ctrl-C during an epoch, and a disk that fills up.

Both must end with a clear message and the right exit status, and leave the last complete checkpoint whole."""
import resource, signal, subprocess, sys, time
from pathlib import Path

from affine_nb.cli import load_checkpoint

AFFINE_TRAIN = str(Path(sys.executable).parent / 'affine-train')


def small_disk():
    "In the child: files over 1 MB fail with EFBIG, as they would on a full disk (a checkpoint is about 5 MB)."
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, resource.RLIM_INFINITY))


def test_interrupt_then_full_disk(tmp_path):
    process = subprocess.Popen([AFFINE_TRAIN, '--epochs', '2', '--out', str(tmp_path), '--quiet'],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    checkpoint, deadline = tmp_path / 'checkpoint.pt', time.time() + 300
    while not checkpoint.exists() and process.poll() is None and time.time() < deadline: time.sleep(0.1)
    time.sleep(1.0)                                   # into epoch 2
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert f"the last complete checkpoint (epoch 1) is intact: resume with --resume {checkpoint}" in err, err
    assert load_checkpoint(checkpoint)['epoch'] == 1
    assert not (tmp_path / 'model.pt').exists()

    resumed = subprocess.run([AFFINE_TRAIN, '--resume', str(checkpoint), '--quiet'], capture_output=True, text=True,
                             preexec_fn=small_disk, timeout=300)
    assert resumed.returncode == 2, resumed.stderr
    assert f"no space left on {tmp_path} to write checkpoint.pt" in resumed.stderr, resumed.stderr
    assert f"the last complete checkpoint (epoch 1) is intact: resume with --resume {checkpoint}" in resumed.stderr
    assert load_checkpoint(checkpoint)['epoch'] == 1
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(('.partial', '.lock'))) == []
