"""pytest runs every chapter in nbs/ as one test, through nbdev's own notebook runner, and the tests in tests/. A
chapter's test runs its cells, then the code of each exercise under its closing "Try it", in order, after its last
cell and in its namespace, as a reader would type them in: an exercise that no longer runs fails its chapter.

`pytest -q` skips the cells flagged `slow` (as `nbdev_test` does); `pytest -q --flags slow` runs them too. An
exercise whose code starts with `#| slow` is flagged so too.
When the browser test runs, it runs every cell of the chapters with widgets in a real kernel and fails on any error, so
those chapters are not run a second time here (their three-epoch trainings are the longest part of either)."""
import sys
from pathlib import Path

import pytest
from nbdev.config import get_config

sys.path.insert(0, str(Path(__file__).parent / 'tests'))    # the tests' helpers, as tests/conftest.py does
from chapter_runner import run_chapter


def pytest_addoption(parser):
    parser.addoption('--flags', default='', help="nbdev test flags whose cells run too (e.g. slow)")


BROWSER_TEST = 'test_widgets_respond_to_sliders'


def run_by_the_browser_test(items) -> dict:
    "{chapter item: the browser test item that runs that chapter cell by cell}, among `items`, where that test can run."
    browsers = [item for item in items if getattr(item, 'originalname', item.name) == BROWSER_TEST]  # (parametrized)
    if not browsers or not browsers[0].module.runs_here(): return {}
    names = {path.split('/')[-1]: browser for browser in browsers for path in browser.module.WIDGETS
             if f'[{path}]' in browser.name}
    return {item: names[item.path.name] for item in items if isinstance(item, ChapterRun) and item.path.name in names}


@pytest.hookimpl(trylast=True)          # after -k and -m have chosen the items
def pytest_collection_modifyitems(config, items):
    for chapter, browser in run_by_the_browser_test(items).items():
        chapter.add_marker(pytest.mark.skip(reason=f"{chapter.path.name} runs cell by cell in {browser.nodeid}, "
                                                   f"which fails on any error"))


def pytest_collect_file(parent, file_path):
    if file_path.suffix == '.ipynb' and file_path.parent.name == 'nbs' and not file_path.name.startswith(('_', '.')):
        return Chapter.from_parent(parent, path=file_path)


class ChapterFailed(Exception):
    "A chapter's cell raised; nbdev's runner has printed the cell and the traceback."


class Chapter(pytest.File):
    def collect(self): yield ChapterRun.from_parent(self, name=self.path.stem)


class ChapterRun(pytest.Item):
    def runtest(self):
        flags = self.config.getoption('--flags').split()
        skipped = [flag for flag in get_config().tst_flags.split() if flag not in flags]
        if not run_chapter(self.path, skip_flags=skipped, force_flags=flags): raise ChapterFailed(self.path.name)

    def repr_failure(self, excinfo):
        if isinstance(excinfo.value, ChapterFailed):
            return f"{self.path.name} failed: its failing cell and traceback are printed above"
        return super().repr_failure(excinfo)

    def reportinfo(self): return self.path, 0, f"chapter {self.path.name}"
