"""Bad input to the layer's three forms and to the probe: a β that would change the output's shape, an image already in
[0, 1], inputs of another dtype than the parameters, and a layer inside a block of the speedrun network.

All in this process, on small random tensors (no data set): nothing here involves other processes, files or signals.
"""
import copy

import pytest
import torch

from affine_nb.probe import affine_on_image
from affine_nb.data import Split
from affine_nb.extending import AFFINE_IMPLS, affine_op, use_impl
from affine_nb.layer import LearnedAffine, affine, affine_layers
from affine_nb.probe import AffineProbe, ablate_affine, affine_summary, interpret_affine
from affine_nb.speedrun import FlipAverage, conv_net
from affine_nb.training import predict

SEED = 0


def random_split(n: int = 64, seed: int = SEED) -> Split:
    print(f"seed {seed}")
    generator = torch.Generator().manual_seed(seed)
    return Split(torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=generator),
                 torch.randint(0, 10, (n,), generator=generator))


def test_affine_refuses_a_beta_that_changes_the_shape():
    torch.manual_seed(SEED)
    print(f"seed {SEED}")
    x, gamma = torch.randn(4, 3), torch.randn(3)
    with pytest.raises(ValueError, match=r"^beta of shape \(5, 1, 3\) cannot take an input of shape \(4, 3\)"):
        affine(x, gamma, torch.randn(5, 1, 3))
    with pytest.raises(ValueError, match=r"beta of shape \(4, 1, 3\)"): affine_op(x, gamma, torch.randn(4, 1, 3))
    for beta in (torch.randn(3), torch.randn(1, 3), torch.tensor(0.5), torch.randn(4, 1)):      # these keep x's shape
        torch.testing.assert_close(affine(x, gamma, beta), x * gamma + beta)


def test_affine_on_image_takes_uint8_and_float_in_unit_range():
    image = random_split(1).images[0]
    assert torch.equal(affine_on_image(image / 255, 2.0, -0.5), affine_on_image(image, 2.0, -0.5))
    assert torch.equal(affine_on_image(image, 1.0, 0.0), image.float() / 255)
    for bad in (image.float(), image.long(), image / 255 - 0.5):             # 0..255 floats, ints, below 0: cannot tell
        with pytest.raises(ValueError, match=r"uint8 image \(0\.\.255\) or a float image in \[0, 1\], got torch\."):
            affine_on_image(bad, 1.0, 0.0)


@pytest.mark.parametrize('x_dtype', [torch.float64, torch.float16, torch.bfloat16, torch.int64], ids=str)
def test_three_forms_promote_dtypes_as_learned_affine(x_dtype):
    x = (torch.arange(24).view(2, 3, 4) % 5).to(x_dtype)
    results = {}
    for impl in AFFINE_IMPLS:
        layer = use_impl(LearnedAffine((3, 1)), impl)
        with torch.no_grad(): layer.gamma.copy_(torch.tensor([[0.5], [-2.], [3.]])); layer.beta.fill_(0.25)
        xg = x.clone().requires_grad_(x_dtype.is_floating_point)
        y = layer(xg)
        y.backward(torch.ones_like(y))
        results[impl] = [y.detach(), layer.gamma.grad, layer.beta.grad] + ([xg.grad] if xg.requires_grad else [])
    expected = torch.float64 if x_dtype == torch.float64 else torch.float32
    assert results['autograd'][0].dtype == expected
    for impl in ('function', 'op'):
        for ours, theirs in zip(results[impl], results['autograd'], strict=True):
            assert ours.dtype == theirs.dtype and torch.equal(ours, theirs), (impl, x_dtype)


@pytest.mark.parametrize('fused, wrap', [(False, False), (True, True)])
def test_probe_takes_a_layer_inside_a_block(fused, wrap):
    torch.manual_seed(SEED)
    print(f"seed {SEED}")
    net = conv_net((8, 8), fused=fused, residual=[1])
    net, split = FlipAverage(net) if wrap else net, random_split()
    names = list(affine_layers(net))
    nested = [name for name in names if '.body.' in name][0]       # e.g. '3.body.0.1.affine', in a residual block
    for name in (names[0], nested):
        probe, changed = AffineProbe(net, split, name), copy.deepcopy(net)
        with torch.no_grad(): affine_layers(changed)[name].gamma.mul_(-1.5); affine_layers(changed)[name].beta.add_(0.3)
        assert torch.equal(probe.predict(), predict(net, split).argmax(1))
        assert torch.equal(probe.predict(-1.5, 0.3), predict(changed, split).argmax(1))
        assert not torch.equal(probe.predict(-1.5, 0.3), probe.predict()), name      # the change reached the layer
    with pytest.raises(ValueError, match=rf"^AffineProbe: the model has no LearnedAffine named '1\.1'; "
                                         rf"its LearnedAffine layers are '{names[0]}', "):
        AffineProbe(net, split, '1.1')


def test_interpret_affine_on_the_speedrun_network():
    torch.manual_seed(SEED)
    print(f"seed {SEED}")
    net, split = conv_net((8, 8), residual=[1]), random_split()
    text = interpret_affine(affine_summary(net), ablate_affine(net, split))
    assert text.count('γ from') == len(affine_layers(net)) == 4 and '3.body.1.1.affine' in text
    with pytest.raises(ValueError, match='needs a model with a LearnedAffine layer'):
        interpret_affine({}, {'trained': 0.5, 'reset ': 0.5})
