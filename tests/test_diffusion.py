import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffrec_core.config import DiffusionConfig
from diffrec_core.diffusion.gaussian import GaussianDiffusion
from diffrec_core.diffusion.resample import LossSecondMomentSampler, UniformSampler
from diffrec_core.diffusion.schedule import linear_variance_schedule


@settings(max_examples=50, deadline=None)
@given(
    steps=st.integers(1, 200),
    scale=st.floats(1e-4, 1.0),
    lo=st.floats(1e-4, 0.3),
    gap=st.floats(1e-4, 0.5),
)
def test_schedule_properties(steps, scale, lo, gap):
    hi = lo + gap
    if scale * hi >= 1:
        return
    betas = linear_variance_schedule(steps, scale, lo, hi)
    assert betas.dtype == torch.float64 and betas.shape == (steps,)
    assert bool(((betas > 0) & (betas <= 1)).all())
    alphas_cumprod = torch.cumprod(1 - betas, 0)
    assert bool((alphas_cumprod[1:] < alphas_cumprod[:-1]).all())
    # Eq. (4): 1 - alpha_bar_t is linear from s*alpha_min to s*alpha_max
    assert torch.allclose(1 - alphas_cumprod, torch.linspace(scale * lo, scale * hi, steps, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("lo,hi", [(0.01, 0.005), (0.01, 0.01)])
def test_config_rejects_min_not_below_max(lo, hi):
    with pytest.raises(ValueError, match="noise_min must be < noise_max"):
        DiffusionConfig(noise_min=lo, noise_max=hi)


def test_config_rejects_sampling_steps_above_steps():
    with pytest.raises(ValueError, match="sampling_steps"):
        DiffusionConfig(steps=5, sampling_steps=6)


def _diffusion(steps=10, mean_type="x0"):
    return GaussianDiffusion(betas=linear_variance_schedule(steps, 0.1, 0.1, 0.5), mean_type=mean_type)


def test_forward_process_statistics():
    diff = _diffusion()
    torch.manual_seed(0)
    x0 = torch.full((20000, 8), 0.7, dtype=torch.float64)
    t = torch.full((20000,), 6, dtype=torch.long)
    xt = diff.q_sample(x0, t, torch.randn_like(x0))
    abar = diff.alphas_cumprod[6]
    assert xt.mean().item() == pytest.approx(math.sqrt(abar) * 0.7, abs=3e-3)
    assert xt.var().item() == pytest.approx(1 - abar.item(), rel=3e-2)


def test_posterior_coefficients_by_hand():
    betas = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
    diff = GaussianDiffusion(betas=betas)
    a = [0.9, 0.8, 0.7]
    abar = [0.9, 0.72, 0.504]
    t = 2  # third step: alpha_bar_{t-1} = 0.72
    coef1 = 0.3 * math.sqrt(0.72) / (1 - 0.504)
    coef2 = (1 - 0.72) * math.sqrt(a[2]) / (1 - 0.504)
    var = 0.3 * (1 - 0.72) / (1 - 0.504)
    assert diff.alphas_cumprod[t].item() == pytest.approx(abar[t])
    assert diff.posterior_mean_coef1[t].item() == pytest.approx(coef1)
    assert diff.posterior_mean_coef2[t].item() == pytest.approx(coef2)
    assert diff.posterior_variance[t].item() == pytest.approx(var)
    # first step: alpha_bar_0 = 1 so the posterior mean is x_0 exactly
    assert diff.posterior_mean_coef1[0].item() == pytest.approx(1.0)
    assert diff.posterior_mean_coef2[0].item() == pytest.approx(0.0)
    x0, xt = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.5, -0.5]])
    mean = diff.q_posterior_mean(x0, xt, torch.tensor([t]))
    assert torch.allclose(mean, torch.tensor([[coef1 * 1 + coef2 * 0.5, coef2 * -0.5]], dtype=torch.float32))


def test_step_weights_x0_match_snr_difference():
    diff = _diffusion()
    t = torch.arange(10)
    w = diff.step_weights(t)
    snr = diff.alphas_cumprod / (1 - diff.alphas_cumprod)
    assert w[0].item() == 1.0
    assert torch.allclose(w[1:].double(), snr[:-1] - snr[1:], rtol=1e-5)
    assert bool((w[1:] > 0).all())


def test_eps_round_trip():
    diff = _diffusion(mean_type="eps")
    x0 = torch.rand(4, 6, dtype=torch.float64)
    noise = torch.randn(4, 6, dtype=torch.float64)
    t = torch.tensor([0, 3, 5, 9])
    xt = diff.q_sample(x0, t, noise)
    assert torch.allclose(diff.predict_x_start_from_eps(xt, t, noise), x0, atol=1e-9)


def test_p_sample_with_perfect_x0_denoiser_returns_x0():
    diff = _diffusion()
    x0 = torch.rand(3, 5)
    oracle = lambda x, t: x0  # noqa: E731 - predicts the true x_0 at every step
    out = diff.p_sample(oracle, x0, sampling_steps=4, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(out, x0, atol=1e-5)


def test_denoise_runs_the_reverse_steps_p_sample_runs():
    diff = _diffusion()
    torch.manual_seed(0)
    net = torch.nn.Linear(5, 5).double()
    model = lambda x, t: net(x) + t[:, None].double() / 10  # noqa: E731 - step-dependent, so the order of steps matters
    x = torch.rand(3, 5, dtype=torch.float64)
    assert torch.equal(diff.denoise(model, x, 0), x)
    one = diff.p_mean(model, x, torch.zeros(3, dtype=torch.long))
    assert torch.allclose(diff.denoise(model, x, 1), one)
    assert torch.allclose(diff.denoise(model, x, diff.steps), diff.p_sample(model, x, sampling_steps=0))
    with pytest.raises(ValueError, match="steps must be in"):
        diff.denoise(model, x, diff.steps + 1)


def test_uniform_sampler_is_seeded():
    s = UniformSampler(7)
    a, wa = s.sample(100, torch.Generator().manual_seed(3))
    b, _ = s.sample(100, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and bool((wa == 1).all()) and int(a.max()) < 7


def test_importance_sampler_warms_up_then_prefers_high_loss_steps():
    s = LossSecondMomentSampler(4, history=10)
    g = torch.Generator().manual_seed(0)
    t, w = s.sample(8, g)
    assert bool((w == 1).all())  # uniform until every step has 10 losses
    for step, loss in enumerate([1.0, 1.0, 1.0, 9.0]):
        s.update(torch.full((12,), step), torch.full((12,), loss))
    assert s.warmed_up
    p = s.probabilities()
    assert p[3] > 0.7 and p.sum().item() == pytest.approx(1.0)
    t, w = s.sample(5000, g)
    assert (t == 3).float().mean().item() == pytest.approx(p[3].item(), abs=0.03)
    # weights 1 / (T p_t) make the estimate unbiased
    assert w[t == 3][0].item() == pytest.approx(1 / (4 * p[3].item()), rel=1e-5)


def test_importance_sampler_keeps_last_losses_only():
    s = LossSecondMomentSampler(1, history=3)
    s.update(torch.zeros(5, dtype=torch.long), torch.tensor([1.0, 2, 3, 4, 5]))
    assert s.state_dict()["losses"][0].tolist() == [3.0, 4.0, 5.0]
