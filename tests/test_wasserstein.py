import pytest
import torch

from cryotrans_engine.wasserstein import blur, l2_loss, sinkhorn, w2_loss


def gauss(shape, centre, sigma, dtype=torch.float32):
    axes = [torch.arange(n, dtype=dtype) for n in shape]
    z, y, x = torch.meshgrid(*axes, indexing='ij')
    r2 = (x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2
    g = torch.exp(-r2 / (2 * sigma ** 2))
    return torch.where(g > 0.02, g, 0)


@pytest.mark.parametrize('kernel', ['fast', 'window'])
@pytest.mark.parametrize('shape', [(20, 18, 16), (12, 40, 9)])
def test_faster_kernels_equal_the_exact_one(shape, kernel):
    step = (1 / max(shape),) * 3
    a0 = gauss(shape, (shape[2] * 0.4, shape[1] * 0.5, shape[0] * 0.5), 2.5)
    a1 = gauss(shape, (shape[2] * 0.6, shape[1] * 0.4, shape[0] * 0.6), 3.0)
    a1 *= a0.sum() / a1.sum()
    exact = w2_loss(a0, a1, step, kernel='exact')
    faster = w2_loss(a0, a1, step, kernel=kernel)
    assert faster.item() == pytest.approx(exact.item(), rel=1e-5)
    p_exact = sinkhorn(a0, a1, tuple(1e-4 / h ** 2 for h in step), 5, kernel='exact')
    p_faster = sinkhorn(a0, a1, tuple(1e-4 / h ** 2 for h in step), 5, kernel=kernel)
    for e, w in zip(p_exact, p_faster):
        assert torch.allclose(e, w, rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize('kernel', ['fast', 'window'])
def test_faster_kernels_are_exact_for_masses_farther_apart_than_any_window(kernel):
    shape = (16, 16, 40)
    step = (1 / 40,) * 3
    a0 = torch.zeros(shape)
    a1 = torch.zeros(shape)
    a0[2, 3, 2] = 1.0
    a1[14, 13, 37] = 1.0
    for iterations in (1, 5, 12):
        e = w2_loss(a0, a1, step, iterations=iterations, kernel='exact').item()
        w = w2_loss(a0, a1, step, iterations=iterations, kernel=kernel).item()
        assert w == pytest.approx(e, rel=1e-5)


@pytest.mark.parametrize('kernel', ['fast', 'window'])
def test_blur_equals_exact_on_lines_spanning_more_than_double_precision(kernel):
    torch.manual_seed(0)
    values = -1500 * torch.rand(6, 7, 30)
    values[..., 3] = 0
    b = (0.9, 0.5, 0.3)
    assert torch.allclose(blur(values, b, kernel), blur(values, b, 'exact'), rtol=1e-6)


def test_blur_of_a_constant_is_the_log_of_the_kernel_sum():
    b = (0.8, 0.8, 0.8)
    out = blur(torch.zeros(30, 30, 30, dtype=torch.float64), b)
    k = torch.arange(-29, 30, dtype=torch.float64)
    expected = 3 * torch.logsumexp(-k ** 2 / 0.8, 0)
    assert torch.isclose(out[15, 15, 15], expected)


def test_w2_gradient_is_the_dual_potential_at_convergence():
    torch.manual_seed(0)
    shape = (7, 6, 8)
    step = (1 / 8,) * 3
    a0 = torch.rand(shape, dtype=torch.float64) + 0.1
    a1 = torch.rand(shape, dtype=torch.float64) + 0.1
    a1 *= a0.sum() / a1.sum()
    kw = dict(epsilon=0.05, iterations=300, kernel='exact')
    a = a0.clone().requires_grad_()
    w2_loss(a, a1, step, **kw).backward()
    direction = torch.randn(shape, dtype=torch.float64)
    h = 1e-5
    numeric = (w2_loss(a0 + h * direction, a1, step, **kw) - w2_loss(a0 - h * direction, a1, step, **kw)) / (2 * h)
    assert (a.grad * direction).sum().item() == pytest.approx(numeric.item(), rel=1e-5)


def test_w2_grows_with_the_distance_moved():
    shape = (16, 16, 32)
    step = (1 / 32,) * 3
    a0 = gauss(shape, (8, 8, 8), 2.0)
    losses = [w2_loss(a0, gauss(shape, (8 + d, 8, 8), 2.0), step).item() for d in (0, 3, 6, 12)]
    assert losses == sorted(losses)
    assert losses[3] - losses[0] > 3 * (losses[1] - losses[0])


def test_l2_loss():
    a = torch.ones(2, 2, 2)
    assert l2_loss(a, 3 * a).item() == 32


def test_fast_blur_takes_one_shift_for_the_whole_map_only_when_double_precision_holds():
    from cryotrans_engine.wasserstein import _blur_whole
    torch.manual_seed(1)
    b = (0.9, 0.5, 0.3)
    modest = -300 * torch.rand(6, 7, 30, dtype=torch.float64)
    whole = _blur_whole(modest, b)
    assert whole is not None
    assert torch.allclose(whole, blur(modest, b, 'exact'), rtol=1e-12)
    lone = torch.full((6, 7, 30), -1500.0, dtype=torch.float64)
    lone[0, 0, 0] = 0
    assert _blur_whole(lone, b) is None
