"""Portable mode on both vendors: the same short fit natively and on emulated Intel and AMD CPUs, bit for bit.

`qemu-x86_64 -cpu NAME` (Debian's qemu-user) runs this project's own Python and torch on an emulated CPU whose CPUID
is what MKL, oneDNN and ATen see. Haswell is an Intel CPU with AVX2, EPYC-Rome an AMD one; portable mode must give
the same weights on both and on this machine's own CPU. Under emulation a process runs about 60 times slower (some
3 minutes, mostly importing torch), so this test runs only when AFFINE_NB_VENDOR_TEST is set, as `.ci/run` does in
a step of its own; with AFFINE_NB_VENDOR_TEST=required a missing qemu-x86_64 fails it instead of skipping it.
"""
import os, shutil, subprocess, sys, tempfile
from pathlib import Path

import pytest

from affine_nb.repro import portable_env

FIT = str(Path(__file__).with_name('vendor_fit.py'))
CPUS = {'Intel': 'Haswell', 'AMD': 'EPYC-Rome'}
QEMU = shutil.which('qemu-x86_64')

pytestmark = pytest.mark.skipif(not os.environ.get('AFFINE_NB_VENDOR_TEST'),
                                reason="emulated CPUs take minutes: set AFFINE_NB_VENDOR_TEST=1")


def test_portable_fit_is_the_same_on_intel_and_amd():
    if QEMU is None:
        message = "qemu-x86_64 not found (Debian: apt-get install qemu-user)"
        if os.environ.get('AFFINE_NB_VENDOR_TEST') == 'required': pytest.fail(message, pytrace=False)
        pytest.skip(message)
    caches = {name: tempfile.mkdtemp(prefix=f'inductor-{name}-') for name in ['native', *CPUS]}  # one kernel cache each
    env = lambda name: portable_env() | {'TORCHINDUCTOR_CACHE_DIR': caches[name]}
    emulated = {vendor: subprocess.Popen([QEMU, '-cpu', cpu, sys.executable, FIT], env=env(vendor), text=True,
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                for vendor, cpu in CPUS.items()}
    native = subprocess.run([sys.executable, FIT], env=env('native'), capture_output=True, text=True,
                            check=True).stdout.split()
    results = {vendor: process.communicate(timeout=1200)[0].split() for vendor, process in emulated.items()}
    for name in caches: shutil.rmtree(caches[name], ignore_errors=True)
    print('native', *native)
    for vendor, result in results.items(): print(vendor, CPUS[vendor], *result)
    assert native[2:4] == ['AVX2', 'True'] and len(native) == 5, native
    for vendor, result in results.items(): assert result == native, (vendor, result, native)
