"""The benchmark is not run by the tests (it must run alone, and takes minutes), but it must keep importing: it names
functions of the package that move between chapters."""
import importlib.util, sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / 'bench'


@pytest.mark.parametrize('name', ['common_recipe', 'bench_training'])
def test_the_benchmark_imports(name, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)                  # the imports and definitions only: main() runs under __main__
    assert callable(getattr(module, 'main'))
    sys.modules.pop('common_recipe', None)
