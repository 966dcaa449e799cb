"""What the tests in tests/ share: their helpers (tiny_train.py, chromium.py) on the import path, and `affine-train`
run by the test's own process on 2 000 images (the settings `--train-images` and `--eval-images` ask for them)."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))      # the helpers, whatever pytest's --import-mode
import affine_nb.cli as cli
from tiny_train import SMALL, run_in_process


@pytest.fixture
def in_process():
    "`affine-train ARGS` run by this process on the first 2 000 training images: (exit status, stdout, stderr)."
    return lambda *args: run_in_process(cli.main, '--quiet', *SMALL, *args)
