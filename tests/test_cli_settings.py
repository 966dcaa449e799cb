"""`affine-train` given settings it must refuse before any work, in one line that names the cause and the fix, with
exit status 2 and nothing left behind: batches too small for the processes or for BatchNorm, widths that are not
whole numbers, a `--timeout` past what c10d can count, `--out` values that name no folder, and a data folder that
cannot be made (named as such, not blamed on the network). And the settings it must pass on as given: an `--out` that
looks like an option, handed to the processes of `--nproc`, and a finished run whose `model.pt` was lost.

All in this process (`in_process`, on 2 000 images): nothing here needs a fault that only a real process can have.
"""
import os
from pathlib import Path

import pytest

import affine_nb.cli as cli
from affine_nb import distributed
from tiny_train import final_digest, one_line, run_in_process

@pytest.mark.parametrize('argv, message', [
    (['--nproc', 2, '--threads', 1, '--batch-size', 1],
     "--batch-size 1 leaves a batch of 1 of the 60000 training images, fewer than the 2 processes"),
    (['--preset', 'speedrun', '--widths', '²'], "--widths must be whole numbers from 1 to 4096"),
    (['--preset', 'speedrun', '--widths', '16,100000'], "--widths must be whole numbers from 1 to 4096"),
    (['--preset', 'speedrun', '--holdout', 95],
     "--batch-size 256 leaves a batch of 1 of the 59905 training images, 1 per process, and BatchNorm"),
    (['--batchnorm', '--batch-size', 59_999],
     "--batch-size 59999 leaves a batch of 1 of the 60000 training images, 1 per process, and BatchNorm"),
    (['--preset', 'speedrun', '--batchnorm'], "--batchnorm adds BatchNorm to the recipe's network only"),
])
def test_settings_refused_before_any_work(tmp_path, argv, message):
    status, _, err = run_in_process(cli.main, *argv, '--out', tmp_path / 'run')
    assert status == 2 and message in one_line(err), err
    assert not (tmp_path / 'run').exists()


def test_out_like_an_option_handed_to_the_processes(tmp_path, in_process, monkeypatch):
    "`--nproc 2 --out=-dash`: the processes get `-dash` as the folder, not as an option they cannot parse."
    handed = []
    monkeypatch.setattr(distributed, 'launch', lambda fn, nproc, argv, **kw: handed.append(argv))   # argv, no processes
    monkeypatch.chdir(tmp_path)
    status, _, err = in_process('--nproc', 2, '--epochs', 1, '--out=-dash')
    assert status == 0 and err == '', err
    assert cli.make_parser().parse_args(handed[0]).out == '-dash'
    assert os.listdir() == []


def test_timeout_past_what_c10d_counts(tmp_path, in_process, monkeypatch):
    "c10d's deadline overflows past about 9.2e9 s (Python's timedelta past 8.6e13 s): refused up front, in one line."
    monkeypatch.setattr(distributed, 'launch', lambda *args, **kw: pytest.fail("the processes were started"))
    for timeout in ('1e10', '1e13', '1e14', 'inf'):
        status, _, err = in_process('--nproc', 2, '--epochs', 1, '--out', tmp_path / 'run', '--timeout', timeout)
        assert status == 2, (timeout, err)
        assert one_line(err).startswith("affine-train: error: --timeout must be a positive number of seconds, at most "
                                        "10**9 (about 32 years), got "), err
    assert os.listdir(tmp_path) == []


def test_out_that_names_no_folder_and_a_lost_ending(tmp_path, in_process, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path('link').symlink_to(tmp_path / 'nowhere')
    for out, says in [('', '--out needs a folder'), ('link', 'link is a symbolic link to'),
                      ('newx/../newy', "give --out newy")]:
        status, _, err = in_process('--epochs', 1, '--out', out)
        assert status == 2 and says in one_line(err), (out, err)
    assert sorted(os.listdir()) == ['link'] and not Path('link').exists()   # no runs/, newx or newy; the link untouched

    status, _, err = in_process('--epochs', 1, '--out', 'done')
    assert status == 0, err
    finished = final_digest(Path('done'))
    Path('done/model.pt').unlink()                                         # the ending lost its weights
    status, out, err = in_process('--resume', 'done/checkpoint.pt')
    assert status == 0 and 'nothing to do' not in out, (out, err)
    assert final_digest(Path('done')) == finished and Path('done/model.pt').exists()


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
