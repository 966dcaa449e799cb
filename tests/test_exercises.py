"""Each chapter's test runs its exercises after its last cell (tests/chapter_runner.py): shown here on small planted
chapters, where an exercise that works passes, one that raises fails its chapter, and one flagged slow runs only when
slow cells do."""
import json

from chapter_runner import exercises, run_chapter


def chapter(folder, *cells: str):
    "A notebook of code cells, and a markdown cell for each text that starts with '#md '."
    path = folder / '00_planted.ipynb'
    path.write_text(json.dumps(dict(nbformat=4, nbformat_minor=5, metadata={}, cells=[
        dict(cell_type='markdown', metadata={}, source=c[4:]) if c.startswith('#md ') else
        dict(cell_type='code', metadata={}, source=c, outputs=[], execution_count=None) for c in cells])))
    return path


def try_it(*codes: str) -> str:
    return '#md ## Try it\n\n' + '\n'.join(f"**{i}.** Look.\n\n```python\n{code}\n```\n" for i, code in
                                            enumerate(codes, 1))


def test_exercises_run_after_the_last_cell_in_its_namespace(tmp_path, capsys):
    path = chapter(tmp_path, 'x = 2', try_it('assert x == 2\ny = x + 1', 'assert y == 3'))
    assert exercises(path) == ['assert x == 2\ny = x + 1\n', 'assert y == 3\n']
    assert run_chapter(path)


def test_a_broken_exercise_fails_its_chapter(tmp_path, capsys):
    path = chapter(tmp_path, 'x = 2', try_it('print(x)', 'print(undefined_name)'))
    assert not run_chapter(path)
    assert 'undefined_name' in capsys.readouterr().err


def test_a_slow_exercise_runs_only_with_slow_cells(tmp_path, capsys):
    path = chapter(tmp_path, 'x = 2', try_it('print(x)', '#| slow\nraise RuntimeError("trained for an hour")'))
    assert run_chapter(path, skip_flags=['slow'])
    assert not run_chapter(path, skip_flags=['slow'], force_flags=['slow'])
    assert 'trained for an hour' in capsys.readouterr().err


def test_only_the_closing_try_it_holds_exercises(tmp_path):
    "Code in other prose is an example, not an exercise; so is a Try it that is not the last markdown cell."
    path = chapter(tmp_path, '#md Like this:\n\n```python\nraise RuntimeError\n```', 'x = 1')
    assert exercises(path) == [] and run_chapter(path)
    assert exercises(chapter(tmp_path, try_it('print(1)'), '#md ## The end')) == []
