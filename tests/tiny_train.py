"""`affine-train` on the first 2 000 training and 500 test images: the real command line in a real process, with less
data, for the tests of its mechanics (folders, signals, full disks), which do not need the whole data set.

    python tests/tiny_train.py [affine-train options]
"""
import sys

import affine_nb.cli as cli
from affine_nb.data import load_split

SIZES = {True: 2_000, False: 500}


def small_split(train: bool = True, root=None, download: bool = False):
    return load_split(train, root, download).subset(SIZES[train])


if __name__ in ('__main__', '__mp_main__'):     # run as a script, or re-imported as such by the processes of --nproc
    cli.load_split = small_split
if __name__ == '__main__': sys.exit(cli.main())
