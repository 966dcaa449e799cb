"""Write README.md from nbs/index.ipynb (the front page), the way nbdev_readme would without Quarto.

Markdown and code cells are converted with nbconvert; a line `<!-- include: PATH -->` is replaced by the file at
PATH (relative to the project), so generated tables (benchmark, results) appear in README.md as they were produced;
links to ../figures/ become figures/.

    python tools/make_readme.py          # write README.md
    python tools/make_readme.py --check  # exit 1 if README.md is not what index.ipynb gives
"""
import re, sys
from pathlib import Path

import nbformat
from nbconvert import MarkdownExporter

PROJECT = Path(__file__).resolve().parent.parent


def include(match: re.Match) -> str:
    path = PROJECT / match.group(1)
    return path.read_text().rstrip('\n') if path.exists() else f"*({match.group(1)} has not been generated yet)*"


def readme() -> str:
    nb = nbformat.read(PROJECT / 'nbs' / 'index.ipynb', as_version=4)
    nb.cells = [c for c in nb.cells if not c.source.lstrip().startswith('#| hide')]
    body, _ = MarkdownExporter(exclude_output=True).from_notebook_node(nb)
    body = re.sub(r'<!-- include: (\S+) -->', include, body)
    body = body.replace('](../figures/', '](figures/').replace('](../', '](')
    return re.sub(r'\n{3,}', '\n\n', body).strip() + '\n'


if __name__ == '__main__':
    text, target = readme(), PROJECT / 'README.md'
    if '--check' in sys.argv:
        if target.read_text() != text:
            sys.exit("README.md is out of date with nbs/index.ipynb (or a file it includes): run python tools/make_readme.py")
        print("README.md is up to date")
    else:
        target.write_text(text)
        print(f"wrote {target.relative_to(PROJECT)}")
