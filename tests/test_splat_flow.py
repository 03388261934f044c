import torch

from cryotrans_engine.flow import Flow, VelocityField
from cryotrans_engine.particles import block_centres, particles, voxel_positions
from cryotrans_engine.splat import splat

SHAPE = (5, 6, 7)
STEP = (1 / 7, 1 / 7, 1 / 7)


def inside_positions(n, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    extent = torch.tensor([7, 6, 5], dtype=dtype) / 7
    return (0.1 + 0.8 * torch.rand(n, 3, generator=g, dtype=dtype)) * extent


def test_splatting_keeps_the_mass_of_particles_inside_the_box():
    x = inside_positions(500, dtype=torch.float32)
    mass = torch.rand(500)
    assert torch.allclose(splat(mass, x, SHAPE, STEP).sum(), mass.sum(), rtol=1e-5)


def test_mass_leaving_the_box_is_dropped_not_wrapped():
    mass = torch.ones(2)
    x = torch.tensor([[0.5, 0.4, 0.3], [5.0, 0.4, 0.3]])
    d = splat(mass, x, SHAPE, STEP)
    assert torch.isclose(d.sum(), torch.tensor(1.0))


def test_particles_at_voxel_centres_splat_back_to_the_same_map():
    density = torch.rand(SHAPE) * (torch.rand(SHAPE) > 0.5)
    mass, x, *_ = particles(density, STEP)
    assert torch.allclose(splat(mass, x, SHAPE, STEP), density, atol=1e-6)


def test_coarse_particles_sit_at_their_blocks_centres_of_mass_and_keep_the_map_s_mass_and_centre():
    """A particle of a binned map holds its block's mass at the block's centre of mass (the far blocks
    padded), so the particles have the map's mass and centre of mass, which block centres do not keep."""
    from cryotrans_engine.training import bin_map
    g = torch.Generator().manual_seed(3)
    density = torch.rand(SHAPE, generator=g, dtype=torch.float64) * (torch.rand(SHAPE, generator=g) > 0.6)
    where = voxel_positions(SHAPE, STEP, dtype=torch.float64)
    for factor in (2, 3):
        coarse = bin_map(density, factor)
        centred = particles(coarse, tuple(h * factor for h in STEP), centres=block_centres(density, factor, STEP))
        plain = particles(coarse, tuple(h * factor for h in STEP))
        mass = density.sum()
        centre = (density[..., None] * where).sum((0, 1, 2)) / mass
        assert torch.allclose(centred.mass.sum(), mass)
        assert torch.allclose((centred.mass[:, None] * centred.positions).sum(0) / mass, centre)
        assert not torch.allclose((plain.mass[:, None] * plain.positions).sum(0) / mass, centre, atol=1e-3)
        # one block by hand: the voxels of block (0, 1, 0)
        block = density[:factor, factor:2 * factor, :factor]
        expected = (block[..., None] * where[:factor, factor:2 * factor, :factor]).sum((0, 1, 2)) / block.sum()
        bx = -(-SHAPE[2] // factor)
        assert torch.allclose(block_centres(density, factor, STEP)[bx], expected)


def test_splatting_gradient_matches_finite_differences():
    x = inside_positions(40).requires_grad_()
    mass = torch.rand(40, dtype=torch.float64).requires_grad_()
    weights = torch.rand(SHAPE, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda m, p: (splat(m, p, SHAPE, STEP) * weights).sum(), (mass, x))


def test_velocity_field_starts_small_with_the_published_initialisation():
    torch.manual_seed(0)
    v = VelocityField(depth=3, width=100)
    assert [layer.weight.shape for layer in v.layers] == [(100, 3), (100, 100), (3, 100)]
    w = torch.cat([layer.weight.flatten() for layer in v.layers])
    assert abs(w.std().item() - 0.01) < 0.001
    assert all((layer.bias == 0).all() for layer in v.layers)
    assert v(torch.rand(10, 3)).abs().max() < 1e-3


def test_flow_takes_m_euler_steps():
    flow = Flow(depth=2, width=8, frames=4).double()
    x = inside_positions(5)
    path = flow.trajectory(x)
    assert len(path) == 5
    expected = x
    for _ in range(4):
        expected = expected + flow.fields[0](expected) / 4
    assert torch.allclose(path[-1], expected)


def test_flow_gradient_wrt_weights_matches_finite_differences():
    torch.manual_seed(1)
    flow = Flow(depth=3, width=6, frames=3).double()
    for p in flow.parameters():
        torch.nn.init.normal_(p, std=0.5)
    names = [n for n, _ in flow.named_parameters()]
    x = inside_positions(30)
    mass = torch.rand(30, dtype=torch.float64)
    weights = torch.rand(SHAPE, dtype=torch.float64)

    def loss(*params):
        moved = torch.func.functional_call(flow, dict(zip(names, params)), (x,))
        return (splat(mass, moved, SHAPE, STEP) * weights).sum()

    params = tuple(p.detach().clone().requires_grad_() for p in flow.parameters())
    assert torch.autograd.gradcheck(loss, params, eps=1e-7, atol=1e-5)


def _reference_velocity(v, x):
    """The velocity field with nn.Linear layers and out-of-place leaky ReLUs."""
    for layer in v.layers[:-1]:
        x = torch.nn.functional.leaky_relu(layer(x), 0.01)
    return v.layers[-1](x)


def _velocities_and_gradients(v, f):
    torch.manual_seed(2)
    for p in v.parameters():
        torch.nn.init.normal_(p, std=0.5)   # plenty of negative pre-activations
    x = torch.rand(3000, 3)
    x[:5] = 0                                # and a few exact zeros
    x.requires_grad_()
    out = f(x)
    v.zero_grad()
    (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
    return [out.detach(), x.grad] + [p.grad.clone() for p in v.parameters()]


def test_in_place_leaky_relu_gives_the_same_velocities_and_gradients_bit_for_bit():
    v = VelocityField(depth=4, width=32)
    ours = _velocities_and_gradients(v, v)
    reference = _velocities_and_gradients(v, lambda x: _reference_velocity(v, x))
    assert all(torch.equal(a, b) for a, b in zip(ours, reference))


def _saved_bytes(flow, x):
    """Bytes autograd keeps for the backward pass of a trajectory (each storage counted once)."""
    seen = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        end = flow(x)
    return sum(seen.values()), end


def test_recomputing_the_flow_keeps_less_and_gives_the_same_gradients_bit_for_bit():
    torch.manual_seed(3)
    x = inside_positions(2000, dtype=torch.float32)
    mass = torch.rand(2000)
    weights = torch.rand(SHAPE)
    results = []
    for recompute in (False, True):
        torch.manual_seed(4)
        flow = Flow(depth=3, width=50, frames=5, recompute=recompute)
        for p in flow.parameters():
            torch.nn.init.normal_(p, std=0.3)
        saved, end = _saved_bytes(flow, x)
        (splat(mass, end, SHAPE, STEP) * weights).sum().backward()
        results.append((saved, end.detach(), [p.grad for p in flow.parameters()]))
    (kept, end0, grads0), (kept_recomputed, end1, grads1) = results
    assert kept >= 5 * flow.fields[0].activation_bytes(2000)
    assert kept_recomputed < kept / 10
    assert torch.equal(end0, end1)
    assert all(torch.equal(a, b) for a, b in zip(grads0, grads1))


def test_recomputation_is_automatic_only_past_the_activation_budget():
    flow = Flow(depth=3, width=100, frames=10)
    x = torch.zeros(1000, 3)
    assert not flow.recomputes(x)                        # 1000 particles: 4 MB of activations
    flow.budget = 1 << 20
    assert flow.recomputes(x)
    with torch.no_grad():
        assert not flow.recomputes(x)                    # nothing to keep without gradients
    assert not Flow().recomputes(torch.zeros(200_000, 3))   # a 160³ map's particles: 0.8 GB
    assert Flow().recomputes(torch.zeros(300_000, 3))       # 1.2 GB


def _autograd_trajectory(flow, x):
    """The flow step by step through plain autograd, as a yardstick for its own backward pass."""
    out = [x]
    for _ in range(flow.frames):
        out.append(out[-1] + _reference_velocity(flow.fields[0], out[-1]) / flow.frames)
    return out


def test_block_by_block_backward_matches_autograd_through_every_frame():
    torch.manual_seed(5)
    flow = Flow(depth=4, width=16, frames=4).double()
    for p in flow.parameters():
        torch.nn.init.normal_(p, std=0.5)
    x = inside_positions(300)
    seeds = [torch.randn(300, 3, dtype=torch.float64) for _ in range(5)]   # every frame gets a gradient
    results = []
    for rows in (None, 64, 1000):            # autograd; 5 blocks, the last one short; one block
        x_ = x.clone().requires_grad_()
        flow.zero_grad()
        if rows is None:
            path = _autograd_trajectory(flow, x_)
        else:
            flow.block_rows = lambda x, rows=rows: rows
            path = flow.trajectory(x_)
        sum((p * s).sum() for p, s in zip(path, seeds)).backward()
        results.append([torch.stack(path).detach(), x_.grad] + [p.grad.clone() for p in flow.parameters()])
    for blocks in results[1:]:
        for a, b in zip(results[0], blocks):
            assert torch.allclose(a, b, rtol=1e-12, atol=1e-12 * b.abs().max().item())


def test_the_flow_moves_particles_in_cache_sized_blocks_on_the_cpu_only():
    flow = Flow()
    assert flow.block_rows(torch.zeros(100_000, 3)) < 10_000
    assert flow.block_rows(torch.zeros(100_000, 3, device='meta')) == 100_000
