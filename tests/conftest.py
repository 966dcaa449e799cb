"""What the tests in tests/ share: `affine-train` run by the test's own process on 2 000 images."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import affine_nb.cli as cli
from tiny_train import run_in_process, small_split


@pytest.fixture
def in_process(monkeypatch):
    "`affine-train ARGS` run by this process on the first 2 000 training images: (exit status, stdout, stderr)."
    monkeypatch.setattr(cli, 'checked_split', small_split)
    return lambda *args: run_in_process(cli.main, '--quiet', *args)
