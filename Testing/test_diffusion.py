"""Localized diffusion core: masked noise, ROI loss, DDPM/DDIM steps vs MONAI, crops, batched sampler."""

import threading

import numpy as np
import pytest
import torch

from scarenhance.diffusion.crops import extract_crops, paste_crops, plan_crops
from scarenhance.diffusion.network import PRESETS, ConditionalDenoiser, count_parameters, network_def
from scarenhance.diffusion.noise import add_localized_noise, masked_error
from scarenhance.diffusion.sampler import ddim_step, ddpm_step, item_generator, reverse_timesteps, sample
from scarenhance.diffusion.schedule import make_schedule
from scarenhance.errors import Cancelled, InputError

TINY = dict(channels=(8, 16), attention_levels=(False, True), num_res_blocks=1, norm_num_groups=8, num_head_channels=8)


@pytest.fixture(scope="module")
def schedule():
    return make_schedule()


@pytest.fixture(scope="module")
def tiny_net():
    torch.manual_seed(0)
    return ConditionalDenoiser(**TINY).eval()


def _crops(n=3, h=16, w=20, seed=0):
    rng = np.random.default_rng(seed)
    x0 = rng.uniform(-1, 1, (n, h, w)).astype(np.float32)
    mask = np.zeros((n, h, w), np.float32)
    mask[:, 4:12, 5:15] = 1
    return x0, mask


# ---- schedule and masked noise -------------------------------------------------------------------


def test_schedule_is_the_papers_linear_beta(schedule):
    assert schedule.num_train_timesteps == 1000
    assert float(schedule.betas[0]) == pytest.approx(1e-4) and float(schedule.betas[-1]) == pytest.approx(0.02)
    assert np.allclose(np.diff(schedule.betas.numpy()), (0.02 - 1e-4) / 999, rtol=1e-3)
    expected = np.cumprod(1 - np.linspace(1e-4, 0.02, 1000))  # ᾱ from the definition, independently of MONAI
    assert np.allclose(schedule.alphas_cumprod.numpy(), expected, rtol=1e-5)
    assert schedule.alpha_bar(-1) == 1.0 and schedule.alpha_bar(249) == pytest.approx(expected[249], rel=1e-5)


def test_localized_noise_is_zero_outside_the_roi_and_follows_eq3(schedule):
    y0 = torch.rand(2, 1, 8, 8) * 2 - 1
    mask = torch.zeros(2, 1, 8, 8)
    mask[:, :, 2:6, 3:7] = 1
    eps = torch.randn(2, 1, 8, 8)
    t = torch.tensor([10, 600])
    yt = add_localized_noise(y0, mask, eps, t, schedule)
    ab = schedule.alphas_cumprod[t].float().view(2, 1, 1, 1)
    expected = ab.sqrt() * y0 + (1 - ab).sqrt() * mask * eps
    assert torch.allclose(yt, expected, atol=1e-6)
    outside = mask == 0
    assert torch.allclose(yt[outside], (ab.sqrt() * y0).expand_as(y0)[outside], atol=1e-7)  # scaled, no noise
    assert not torch.allclose(yt[~outside], (ab.sqrt() * y0).expand_as(y0)[~outside])


def test_loss_ignores_pixels_outside_the_roi():
    eps, eps_hat = torch.randn(2, 1, 8, 8), torch.randn(2, 1, 8, 8)
    mask = torch.zeros(2, 1, 8, 8)
    mask[:, :, 2:5, 2:5] = 1
    changed = eps_hat.clone()
    changed[mask.expand_as(changed) == 0] += 100.0
    assert masked_error(changed, eps, mask).item() == pytest.approx(masked_error(eps_hat, eps, mask).item(), rel=1e-6)
    changed[0, 0, 3, 3] += 1.0  # inside: the loss moves
    assert masked_error(changed, eps, mask).item() != pytest.approx(masked_error(eps_hat, eps, mask).item(), rel=1e-6)


def test_weighted_loss_is_the_weighted_mean_over_the_roi():
    eps, eps_hat = torch.zeros(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)
    eps_hat[0, 0, 0, 0] = 2.0  # one "scar" pixel wrong by 2, three ROI pixels right
    mask = torch.zeros(1, 1, 4, 4)
    mask[0, 0, :2, :2] = 1
    weight = torch.ones(1, 1, 4, 4)
    assert masked_error(eps_hat, eps, mask, weight).item() == pytest.approx(masked_error(eps_hat, eps, mask).item())  # w = 1: plain
    weight[0, 0, 0, 0] = 5.0
    assert masked_error(eps_hat, eps, mask, weight).item() == pytest.approx(5 * 4.0 / (5 + 3))  # Σ w·m·e² / Σ w·m
    weight[0, 0, 3, 3] = 50.0  # weights outside the ROI change nothing
    assert masked_error(eps_hat, eps, mask, weight).item() == pytest.approx(20.0 / 8)


def test_loss_is_normalised_by_roi_area():
    eps = torch.zeros(2, 1, 16, 16)
    eps_hat = torch.full((2, 1, 16, 16), 0.5)
    mask = torch.zeros(2, 1, 16, 16)
    mask[0, :, :2, :2] = 1  # a small heart (4 px)
    mask[1, :, :, :] = 1  # a large one (256 px)
    per_sample = [masked_error(eps_hat[i : i + 1], eps[i : i + 1], mask[i : i + 1]).item() for i in range(2)]
    assert per_sample == pytest.approx([0.25, 0.25])  # the mean error over ROI pixels, whatever the area
    assert masked_error(eps_hat, eps, mask).item() == pytest.approx(0.25)
    assert masked_error(eps_hat, eps, torch.zeros_like(mask)).item() == 0.0  # empty ROI: no contribution


# ---- network ------------------------------------------------------------------------------------


def test_denoiser_shapes_presets_and_config(tiny_net):
    x = torch.randn(3, 2, 16, 24)
    out = tiny_net(x, torch.tensor([0, 10, 999]))
    assert out.shape == (3, 1, 16, 24)
    assert tiny_net.multiple_of == 2
    with pytest.raises(ValueError, match="multiples of 2"):
        tiny_net(torch.randn(1, 2, 15, 16), torch.tensor([1]))
    with pytest.raises(ValueError, match="unknown diffusion network preset"):
        ConditionalDenoiser("huge")
    assert set(PRESETS) == {"cpu-small", "gpu-paper"}
    assert network_def("cpu-small") == {"_target_": "scarenhance.diffusion.network.ConditionalDenoiser", "preset": "cpu-small"}


def test_gpu_paper_preset_matches_the_papers_32m_parameters():
    with torch.device("meta"):  # no memory: only the parameter count is needed
        net = ConditionalDenoiser("gpu-paper")
    assert 30e6 < count_parameters(net) < 34e6
    assert net.multiple_of == 16


# ---- reverse steps vs MONAI ---------------------------------------------------------------------


def test_ddpm_step_equals_monai_scheduler_step(schedule):
    y, eps = torch.randn(1, 1, 8, 8), torch.randn(1, 1, 8, 8) * 0.3
    for t in (0, 1, 137, 249):
        expected, _ = schedule.scheduler.step(eps, t, y, generator=torch.Generator().manual_seed(5))
        z = torch.randn(y.shape, generator=torch.Generator().manual_seed(5))
        assert torch.allclose(ddpm_step(y, eps, t, schedule, z), expected, atol=1e-5), t


@pytest.mark.parametrize("eta", [0.0, 0.7])
def test_ddim_step_equals_monai_ddim_scheduler_step(schedule, eta):
    from monai.networks.schedulers import DDIMScheduler

    ddim = DDIMScheduler(1000, schedule="linear_beta", beta_start=1e-4, beta_end=0.02, clip_sample=True)
    ddim.set_timesteps(10)  # 900, 800, …, 0: prev = t − 100
    y, eps = torch.randn(1, 1, 8, 8), torch.randn(1, 1, 8, 8) * 0.3
    expected, _ = ddim.step(eps, 500, y, eta=eta, generator=torch.Generator().manual_seed(3))
    z = torch.randn(y.shape, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(ddim_step(y, eps, 500, 400, schedule, eta, z), expected, atol=1e-5)


def test_reverse_timesteps():
    assert reverse_timesteps(250, None, 1000) == list(range(249, -1, -1))
    fast = reverse_timesteps(250, 10, 1000)
    assert fast[0] == 249 and fast[-1] == 0 and len(fast) == 10 and fast == sorted(fast, reverse=True)
    assert reverse_timesteps(5, 5, 1000) == [4, 3, 2, 1, 0]
    for lam, steps in ((0, None), (1001, None), (10, 11), (10, 0)):
        with pytest.raises(InputError):
            reverse_timesteps(lam, steps, 1000)


def test_item_generators_are_independent_streams():
    a = torch.randn(4, generator=item_generator(7, 0, 3))
    assert torch.equal(a, torch.randn(4, generator=item_generator(7, 0, 3)))
    assert not torch.equal(a, torch.randn(4, generator=item_generator(7, 1, 3)))
    assert not torch.equal(a, torch.randn(4, generator=item_generator(7, 0, 4)))
    # no overlap between seeds: (seed 7, repeat 1) is not (seed 8, repeat 0), nor (7, 0) of slice 1 (3, 1)
    assert not torch.equal(torch.randn(4, generator=item_generator(7, 1, 3)), torch.randn(4, generator=item_generator(8, 0, 3)))
    assert not torch.equal(torch.randn(4, generator=item_generator(1, 0, 3)), torch.randn(4, generator=item_generator(0, 1, 3)))
    state = np.random.SeedSequence([7, 1, 3]).generate_state(2, dtype=np.uint32)  # the documented recipe
    expected = torch.randn(4, generator=torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1])))
    assert torch.equal(torch.randn(4, generator=item_generator(7, 1, 3)), expected)


# ---- crops --------------------------------------------------------------------------------------


def test_crops_cover_the_roi_share_one_size_and_paste_back_exactly():
    rng = np.random.default_rng(1)
    stack = rng.random((4, 40, 50)).astype(np.float32)
    mask = np.zeros((4, 40, 50), bool)
    mask[0, 0:6, 0:9] = True  # at the corner: the window reaches beyond the slice
    mask[2, 20:35, 30:48] = True
    plan = plan_crops(mask, margin=3, multiple_of=8)
    assert list(plan.slice_indices) == [0, 2]
    h, w = plan.size
    assert h % 8 == 0 and w % 8 == 0 and h >= 15 + 6 and w >= 18 + 6
    crops = extract_crops(stack, plan, fill=-7.0)
    masks = extract_crops(mask.astype(np.float32), plan)
    assert crops.shape == (2, h, w)
    assert masks.sum() == mask.sum()  # every ROI pixel is inside its window
    assert (crops == -7.0).any()  # the corner window was padded
    assert np.array_equal(paste_crops(stack, crops, plan), stack)  # exact round trip
    changed = paste_crops(stack, crops + 1.0, plan, mask=mask)
    assert np.array_equal(changed[~mask], stack[~mask]) and np.allclose(changed[mask], stack[mask] + 1.0)
    with pytest.raises(ValueError, match="empty"):
        plan_crops(np.zeros((2, 5, 5), bool))


def test_an_roi_larger_than_the_largest_window_is_tiled_and_blended():
    rng = np.random.default_rng(2)
    stack = rng.random((3, 80, 90))
    mask = np.zeros((3, 80, 90), bool)
    mask[0, 10:70, 20:75] = True  # 60 × 55 px, plus 4 px a side: 4 × 3 windows of 32 px, at most 16 px apart
    mask[2, 30:40, 40:50] = True  # fits in one window, centred as without tiling
    plan = plan_crops(mask, margin=4, multiple_of=8, max_size=32)
    assert plan.size == (32, 32)
    first = plan.slice_indices == 0
    assert first.sum() == 4 * 3 and list(plan.slice_indices[~first]) == [2]
    assert sorted(plan.seed_ids.tolist()) == sorted(set(plan.seed_ids.tolist()))  # every window its own noise
    assert plan.seed_ids[0] == 0 and plan.seed_ids[-1] == 2  # a slice's first window is seeded by the slice
    assert plan_crops(mask, margin=4, multiple_of=8, max_size=32).corners[-1].tolist() == \
        plan_crops(mask[2:], margin=4, multiple_of=8, min_size=32).corners[0].tolist()
    crops = extract_crops(stack, plan)
    covered = np.zeros(stack.shape, int)
    for j, (i, (r, c)) in enumerate(zip(plan.slice_indices, plan.corners)):
        covered[i, r - plan.pad : r - plan.pad + 32, c - plan.pad : c - plan.pad + 32] += 1
    assert (covered[mask] >= 1).all() and (covered[0][mask[0]] > 1).any()
    assert np.allclose(paste_crops(stack, crops, plan), stack, rtol=0, atol=1e-12)  # the same values blend to themselves
    once = covered == 1
    assert np.array_equal(paste_crops(stack, crops, plan)[once], stack[once])  # one window: its value exactly
    # two values blend by the windows' tapers, to a value in between
    odd = np.where((np.arange(len(plan)) % 2 == 0)[:, None, None], 0.0, 1.0) * np.ones_like(crops)
    pasted = paste_crops(np.full(stack.shape, 5.0), odd, plan, mask=mask)
    assert np.array_equal(pasted[~mask], np.full(stack.shape, 5.0)[~mask])  # outside the ROI: untouched
    shared = mask & (covered > 1)
    assert ((pasted[shared] >= 0) & (pasted[shared] <= 1)).all() and 0 < pasted[shared].mean() < 1
    assert plan_crops(mask, margin=4, multiple_of=8, min_size=40, max_size=32).size == (40, 40)  # never below min_size
    # a box that fits with 8 px a side keeps one window, with less than the margin asked for
    just_over = np.zeros((1, 80, 90), bool)
    just_over[0, 30:44, 30:46] = True  # 14 × 16 px: 30 × 32 with 8 px a side, 46 × 48 with the 16 px margin
    plan = plan_crops(just_over, margin=16, multiple_of=8, max_size=32)
    assert len(plan) == 1 and plan.size == (32, 32)
    assert len(plan_crops(just_over, margin=16, multiple_of=8, max_size=24)) == 3 * 3  # 46 and 48 px in windows of 24


# ---- sampler ------------------------------------------------------------------------------------


def test_sampler_is_deterministic_and_keeps_the_outside(tiny_net, schedule):
    x0, mask = _crops()
    a = sample(tiny_net, x0, mask, schedule, lam=12, k=2, seed=4)
    b = sample(tiny_net, x0, mask, schedule, lam=12, k=2, seed=4)
    c = sample(tiny_net, x0, mask, schedule, lam=12, k=2, seed=5)
    assert a.shape == (2, 3, 16, 20) and np.array_equal(a, b) and not np.allclose(a, c)
    outside = np.broadcast_to(mask == 0, a.shape)
    assert np.array_equal(a[outside], np.broadcast_to(x0, a.shape)[outside])  # at t = 0: exactly x0
    assert not np.allclose(a[0], a[1])  # the k repeats differ inside the ROI
    assert np.abs(a).max() <= 1.0 + 1e-6


def test_sampler_runs_bf16_where_the_cpu_has_it_and_fp32_on_request(schedule, monkeypatch):
    x0, mask = _crops()
    torch.manual_seed(1)
    net = ConditionalDenoiser(**TINY).eval()
    for p in net.unet.out[-1].parameters():  # MONAI zero-initialises the output layer: ε̂ = 0 in any precision
        torch.nn.init.normal_(p, std=0.1)

    def run(native_bf16, **kw):
        monkeypatch.setattr("scarenhance.device.cpu_has_native_bf16", lambda: native_bf16)
        return sample(net, x0, mask, schedule, lam=10, k=2, steps=4, seed=3, **kw)

    fp32 = run(False)
    assert np.array_equal(run(True, fp32=True), fp32)  # fp32=True is the fp32 chain, bit for bit
    bf16 = run(True)
    assert not np.array_equal(bf16, fp32) and np.abs(bf16 - fp32).max() < 0.05  # bf16 ran, and stays close
    outside = np.broadcast_to(mask == 0, bf16.shape)
    assert np.array_equal(bf16[outside], np.broadcast_to(x0, bf16.shape)[outside])  # exact outside either way


@pytest.mark.parametrize("steps", [None, 4])
def test_repeat_r_of_seed_s_is_repeat_r_of_every_longer_run_with_seed_s(tiny_net, schedule, steps):
    x0, mask = _crops()
    seed = 11
    three = sample(tiny_net, x0, mask, schedule, lam=10, k=3, steps=steps, seed=seed)
    two = sample(tiny_net, x0, mask, schedule, lam=10, k=2, steps=steps, seed=seed)
    one = sample(tiny_net, x0, mask, schedule, lam=10, k=1, steps=steps, seed=seed)
    assert np.allclose(three[:2], two, atol=1e-5) and np.allclose(three[:1], one, atol=1e-5)
    # and the streams of seeds S and S + 1 do not overlap: repeat 1 of seed S is not the k = 1 run of S + 1
    next_seed = sample(tiny_net, x0, mask, schedule, lam=10, k=1, steps=steps, seed=seed + 1)
    assert not np.allclose(three[1], next_seed[0], atol=1e-3)


def test_result_does_not_depend_on_batch_size(tiny_net, schedule):
    x0, mask = _crops(n=3)
    ids = [4, 7, 9]
    whole = sample(tiny_net, x0, mask, schedule, lam=8, k=2, seed=2, slice_ids=ids, chunk_size=6)
    ones = sample(tiny_net, x0, mask, schedule, lam=8, k=2, seed=2, slice_ids=ids, chunk_size=1)
    odd = sample(tiny_net, x0, mask, schedule, lam=8, k=2, seed=2, slice_ids=ids, chunk_size=4)
    assert np.allclose(whole, ones, atol=1e-5) and np.allclose(whole, odd, atol=1e-5)
    # a crop's noise follows its slice id, not its position in the list
    sub = sample(tiny_net, x0[1:2], mask[1:2], schedule, lam=8, k=2, seed=2, slice_ids=[7])
    assert np.allclose(sub[:, 0], whole[:, 1], atol=1e-5)


def test_out_of_memory_halves_the_batch_and_gives_the_same_result(tiny_net, schedule):
    class Picky(torch.nn.Module):  # runs out of "memory" above 2 items per batch
        multiple_of = 2

        def __init__(self):
            super().__init__()
            self.net, self.batches = tiny_net, []

        def forward(self, x, t, roi=None):
            self.batches.append(len(x))
            if len(x) > 2:
                raise torch.cuda.OutOfMemoryError("fake")
            return self.net(x, t)

    x0, mask = _crops(n=3)
    messages = []
    picky = Picky()
    got = sample(picky, x0, mask, schedule, lam=5, k=2, seed=1, chunk_size=6, progress=lambda f, m: messages.append(m))
    assert max(picky.batches[-5:]) <= 2 and any("out of memory" in m for m in messages)
    assert np.allclose(got, sample(tiny_net, x0, mask, schedule, lam=5, k=2, seed=1), atol=1e-5)


@pytest.mark.parametrize("steps", [None, 3])
def test_progress_is_reported_at_every_reverse_step(tiny_net, schedule, steps):
    x0, mask = _crops(n=2)
    calls = []
    sample(tiny_net, x0, mask, schedule, lam=6, k=2, steps=steps, seed=0, chunk_size=2, progress=lambda f, m: calls.append(f))
    n_steps = 6 if steps is None else 3
    assert len(calls) == 2 * n_steps  # two chunks × every step
    assert calls == sorted(calls) and calls[-1] == pytest.approx(1.0)


def test_cancel_stops_the_chain(tiny_net, schedule):
    x0, mask = _crops(n=2)
    cancel = threading.Event()
    calls = []

    def progress(fraction, message):
        calls.append(fraction)
        if len(calls) == 2:
            cancel.set()

    with pytest.raises(Cancelled):
        sample(tiny_net, x0, mask, schedule, lam=50, k=2, seed=0, progress=progress, cancel=cancel)
    assert len(calls) == 2  # stopped at the very next step


def test_sampler_rejects_bad_parameters(tiny_net, schedule):
    x0, mask = _crops(n=1)
    with pytest.raises(InputError, match="k"):
        sample(tiny_net, x0, mask, schedule, lam=5, k=0)
    with pytest.raises(InputError, match="steps"):
        sample(tiny_net, x0, mask, schedule, lam=5, k=1, steps=6)
    with pytest.raises(InputError, match="seed"):
        sample(tiny_net, x0, mask, schedule, lam=5, k=1, seed=-1)
