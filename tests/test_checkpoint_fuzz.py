"""Whatever a checkpoint file holds, `affine-train --resume` refuses it with exit status 2 and one line, or resumes it
to the same bits as a straight run: it never crashes, never prints a traceback, and never trains on it to another
result.

hypothesis mutates every entry of a real checkpoint: a tensor's shape, dtype or values (NaN), an entry's type or size,
a missing entry; most mutations are sealed again, as a forger would, so that the checks behind the seal are the ones
tested (except valid settings of another run, sealed again: a forged run that no check can tell from a real one). Whole
files are cut short or have a byte flipped. The command line runs in this process on 2 000 images.
"""
import io, json, shutil, warnings

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from affine_nb.checkpoints import config_problems, read_checkpoint, seal
from affine_nb.runs import train_run
from tiny_train import small_settings, small_split

EPOCHS = 2


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    "A run stopped after its first epoch, and the weights digest of the same run uninterrupted."
    root = tmp_path_factory.mktemp('fuzz')
    cfg, train, test = small_settings(epochs=EPOCHS), small_split(True), small_split(False)
    straight = train_run(cfg, root / 'straight', train, test)[1]['weights_sha256']
    train_run(cfg, root / 'stopped', train, test, stop_after=1)
    return Run(read_checkpoint(root / 'stopped' / 'checkpoint.pt'), (root / 'stopped' / 'checkpoint.pt').read_bytes(),
               straight)


class Run(tuple):
    "(checkpoint, its bytes, the straight run's digest), shown briefly when a test fails."
    def __new__(cls, *parts): return super().__new__(cls, parts)
    def __repr__(self): return f"Run(straight={self[2][:16]}…)"


def leaves(value, path=()):
    "The path to every entry of `value`, containers included, outermost first."
    yield path
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) else ()
    for key, item in items: yield from leaves(item, path + (key,))


def replaced(value, path, new):
    "`value` with the entry at `path` replaced by `new` (or removed, if `new` is `REMOVE`), copied along the way."
    if not path: return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        copy = dict(value)
        if rest or new is not REMOVE: copy[head] = replaced(value[head], rest, new)
        else: del copy[head]
        return copy
    items = list(value)
    if rest or new is not REMOVE: items[head] = replaced(value[head], rest, new)
    else: del items[head]
    return type(value)(items) if isinstance(value, tuple) else items


REMOVE = object()


def mutations(old):
    "What a file could hold instead of `old`."
    others = [None, 0, -1, 10**30, 1.5, float('nan'), float('inf'), True, 'x', [], {}, torch.zeros(0)]
    if isinstance(old, torch.Tensor):
        others += [old.to(dtype) for dtype in (torch.float16, torch.float64, torch.int64, torch.uint8, torch.bool)
                   if dtype != old.dtype]
        others += [old.reshape(-1), torch.zeros(old.numel() + 1, dtype=old.dtype), old.unsqueeze(0)]
        if old.is_floating_point() and old.numel():
            others.append(old.flatten().index_fill(0, torch.tensor([0]), float('nan')).reshape(old.shape))
    if isinstance(old, (list, tuple)) and old: others += [old[:-1], [*old, old[-1]]]
    if isinstance(old, dict) and old: others += [dict(list(old.items())[:-1])]
    return others + [REMOVE]


def refused_or_same(run, tmp_path, in_process, data: bytes, label) -> None:
    _, _, straight = run
    shutil.rmtree(tmp_path / 'out', ignore_errors=True)
    (tmp_path / 'given.pt').write_bytes(data)
    with warnings.catch_warnings(record=True) as warned:          # a warning would be a second line on stderr
        warnings.simplefilter('always')
        status, _, err = in_process('--resume', tmp_path / 'given.pt', '--out', tmp_path / 'out')
    assert not warned, (label, [str(w.message) for w in warned])
    if status == 0:             # accepted: then it must be the run as its checkpoint wrote it
        assert json.loads((tmp_path / 'out' / 'metrics.json').read_text())['weights_sha256'] == straight, label
    else:
        lines = err.strip().splitlines()
        assert status == 2 and len(lines) == 1 and 'Traceback' not in err, (label, status, err[-3000:])


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_every_entry_mutated(run, tmp_path_factory, in_process, data):
    state, _, _ = run
    paths = [p for p in leaves(state) if p and p[0] != 'digest']
    path = data.draw(st.sampled_from(paths), label='entry')
    old = state
    for key in path: old = old[key]
    new = data.draw(st.sampled_from(mutations(old)), label='mutation')
    mutated = replaced(state, path, new)
    sealed_again = data.draw(st.booleans(), label='sealed again') if path[0] != 'digest' else False
    if sealed_again and path[0] == 'config' and 'config' in mutated and not config_problems(mutated['config']):
        # valid settings of another run, sealed by a forger: no check can tell them from a real run's
        return
    buffer = io.BytesIO()
    torch.save(seal(mutated) if sealed_again and isinstance(mutated, dict) else mutated, buffer)
    refused_or_same(run, tmp_path_factory.mktemp('case'), in_process, buffer.getvalue(), (path, type(new).__name__))


@settings(max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_files_cut_short_or_flipped(run, tmp_path_factory, in_process, data):
    _, raw, _ = run
    at = data.draw(st.integers(0, len(raw) - 1), label='byte')
    bad = raw[:at] if data.draw(st.booleans(), label='cut short') else raw[:at] + bytes([raw[at] ^ 0x10]) + raw[at + 1:]
    refused_or_same(run, tmp_path_factory.mktemp('case'), in_process, bad, at)
