"""The GPU paths: training with `--device cuda`, bf16 autocast there, and two processes over nccl.

They run only where CUDA GPUs exist, and are skipped with the reason elsewhere (`pytest -rs` lists it)."""
import math

import pytest
import torch

from affine_nb.integrity import checked_split
from affine_nb.distributed import fit_on_rank, launch
from affine_nb.config import RunConfig
from affine_nb.training import fit

GPUS = torch.cuda.device_count() if torch.cuda.is_available() else 0
needs_gpu = pytest.mark.skipif(GPUS < 1, reason="no CUDA GPU here")
needs_two_gpus = pytest.mark.skipif(GPUS < 2,
                                    reason=f"nccl with 2 processes needs 2 CUDA GPUs, this machine has {GPUS}")


@pytest.fixture(scope='module')
def small():
    return checked_split(True).subset(5_000), checked_split(False).subset(1_000)


@needs_gpu
@pytest.mark.parametrize('precision', ['fp32', 'bf16'])
def test_fit_on_gpu(small, precision):
    cfg = RunConfig(epochs=2, device='cuda', precision=precision, threads=1)
    _, metrics = fit(cfg, *small)
    _, again = fit(cfg, *small)
    assert metrics['weights_sha256'] == again['weights_sha256']           # deterministic kernels on the GPU too
    assert math.isfinite(metrics['history'][-1]['train_loss']) and metrics['test_acc'] > 0.6


@needs_two_gpus
def test_two_processes_over_nccl(small):
    cfg = RunConfig(epochs=1, device='cuda', nproc=2, threads=1)
    ranks = launch(fit_on_rank, 2, cfg, *small, device='cuda')
    assert ranks[0]['metrics']['weights_sha256'] == ranks[1]['metrics']['weights_sha256']
    assert ranks[0]['metrics']['world_size'] == 2
