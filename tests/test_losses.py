"""Each family's loss against values computed by hand on tiny tensors."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from zsgm.generate.families.autoencoders import gaussian_kl, mmd, reconstruction
from zsgm.generate.families.began import equilibrium_update
from zsgm.generate.families.fgan import DIVERGENCES, variational_bound
from zsgm.generate.families.fisher import augmented_lagrangian, second_moment_constraint
from zsgm.generate.families.gan_losses import (bce_critic, least_squares_critic, least_squares_generator,
                                          minimax_generator, nonsaturating_generator, relativistic_critic,
                                          relativistic_generator)
from zsgm.generate.families.info import info_loss
from zsgm.generate.registry import get
from zsgm.pipelines.config import generator_defaults

LN2 = math.log(2.0)
t = torch.tensor


def close(a, b, tol=1e-6):
    return abs(float(a) - float(b)) < tol


def family(name: str, **hp):
    return get(name).cls(2, 1, generator_defaults(name, hidden=4, **hp))


class Identity(nn.Module):
    """A critic h(x, a) = x, so that losses reduce to hand-computable norms."""

    def forward(self, x, att):
        return x


class Zero(nn.Module):
    """An autoencoder D(x, a) = 0, so that BEGAN's L(x) = mean |x|."""

    def forward(self, x, att):
        return torch.zeros_like(x)


# ---------------------------------------------------------------- standard GAN losses
def test_bce_minimax_nonsaturating():
    assert close(bce_critic(t([0.0]), t([0.0])), 2 * LN2)
    # D = σ(ln 3) = 3/4: −log D = ln(4/3); log(1 − D) = −ln 4.
    assert close(nonsaturating_generator(t([math.log(3)])), math.log(4 / 3))
    assert close(minimax_generator(t([math.log(3)])), -math.log(4))


def test_least_squares():
    # ½·mean((1−1)², (0−1)²) + ½·0.5² = 0.25 + 0.125
    assert close(least_squares_critic(t([1.0, 0.0]), t([0.5])), 0.375)
    assert close(least_squares_generator(t([0.5])), 0.125)


def test_relativistic_average():
    # D̃_r = [2, 0] − mean([1, −1]) = [2, 0]; D̃_f = [1, −1] − mean([2, 0]) = [0, −2].
    d_real, d_fake = t([2.0, 0.0]), t([1.0, -1.0])
    sp = lambda v: math.log1p(math.exp(v))  # noqa: E731
    assert close(relativistic_critic(d_real, d_fake), (sp(-2) + sp(0)) / 2 + (sp(0) + sp(-2)) / 2)
    assert close(relativistic_generator(d_real, d_fake), (sp(0) + sp(2)) / 2 + (sp(2) + sp(0)) / 2)


# ---------------------------------------------------------------- f-GAN (Nowozin et al. Table 2)
HAND = {  # divergence: (v, g_f(v), f*(g_f(v)))
    "total_variation": (math.atanh(0.5), 0.25, 0.25),
    "forward_kl": (1.0, 1.0, 1.0),
    "reverse_kl": (0.0, -1.0, -1.0),
    "pearson": (2.0, 2.0, 3.0),
    "hellinger": (LN2, 0.5, 1.0),
    "jensen_shannon": (math.log(3), math.log(1.5), LN2),
}

# The generator functions f(u) of Table 1, to check that f* really is their convex conjugate.
F_OF_U = {
    "total_variation": lambda u: 0.5 * (u - 1).abs(),
    "forward_kl": lambda u: u * u.log(),
    "reverse_kl": lambda u: -u.log(),
    "pearson": lambda u: (u - 1) ** 2,
    "hellinger": lambda u: (u.sqrt() - 1) ** 2,
    "jensen_shannon": lambda u: -(u + 1) * ((1 + u) / 2).log() + u * u.log(),
}
T_IN_DOMAIN = {"total_variation": 0.2, "forward_kl": 0.5, "reverse_kl": -2.0, "pearson": 1.0,
               "hellinger": 0.5, "jensen_shannon": 0.3}


def test_every_divergence_has_hand_values():
    assert set(HAND) == set(DIVERGENCES) == set(F_OF_U)


@pytest.mark.parametrize("name", sorted(HAND))
def test_fgan_activation_and_conjugate(name):
    div = DIVERGENCES[name]
    v, g, conj = HAND[name]
    assert close(div.activation(t([v])), g)
    assert close(div.conjugate(t([g])), conj)
    assert close(div.conj_act(t([v])), conj)
    # The stable fused form equals the composition wherever the latter is finite.
    vs = torch.linspace(-3, 3, 61, dtype=torch.float64)
    assert torch.allclose(div.conj_act(vs), div.conjugate(div.activation(vs)), atol=1e-9)


@pytest.mark.parametrize("name", sorted(HAND))
def test_fgan_conjugate_is_fenchel_dual_of_f(name):
    # f*(t) = sup_u (u·t − f(u)), on a fine grid of u > 0.
    u = torch.linspace(1e-6, 60, 3_000_001, dtype=torch.float64)
    tt = T_IN_DOMAIN[name]
    sup = float((u * tt - F_OF_U[name](u)).max())
    assert abs(sup - float(DIVERGENCES[name].conjugate(t([tt], dtype=torch.float64)))) < 1e-4


def test_fgan_bound():
    # Jensen–Shannon at v_r = ln 3, v_f = 0: g_f(ln 3) − f*(g_f(0)) = ln 1.5 − 0.
    div = DIVERGENCES["jensen_shannon"]
    assert close(variational_bound(div, t([math.log(3)]), t([0.0])), math.log(1.5))
    fam = family("fgan_pearson")
    assert close(fam.d_loss(t([2.0]), t([2.0])), -(2.0 - 3.0))
    assert close(fam.g_loss(None, t([2.0])), -2.0)


# ---------------------------------------------------------------- Cramér
def test_cramer_surrogate_and_energy(monkeypatch):
    fam = family("cramer", critic_dim=2)
    fam.critic = Identity()
    att = torch.zeros(1, 1)
    real, fake, fake2 = t([[0.0, 0.0]]), t([[3.0, 4.0]]), t([[0.0, 4.0]])
    monkeypatch.setattr(fam, "sample", lambda a, gen=None: fake2)
    # f(x) = ‖x − x'_g‖ − ‖x‖: f(real) = 4 − 0, f(fake) = 3 − 5.
    assert close(fam.surrogate(fake, fake2, att), -2.0, 1e-5)
    loss, _ = fam.critic_loss(real, fake, att)
    assert close(loss, -(4.0 - (-2.0)), 1e-5)
    # ‖r − g‖ + ‖r − g'‖ − ‖g − g'‖ = 5 + 4 − 3.
    energy, _ = fam.generator_loss(real, fake, att)
    assert close(energy, 6.0, 1e-5)


# ---------------------------------------------------------------- BEGAN
def test_began_equilibrium_update():
    assert close(equilibrium_update(0.0, 0.4, 0.1, gamma=0.5, lambda_k=1e-3), 1e-4)
    assert equilibrium_update(0.9999, 1.0, 0.0, gamma=1.0, lambda_k=1.0) == 1.0   # clipped above
    assert equilibrium_update(0.0, 0.0, 1.0, gamma=1.0, lambda_k=1.0) == 0.0      # clipped below


def test_began_losses_and_k_state():
    fam = family("began", began_gamma=0.5, began_lambda_k=0.1, began_k0=0.5)
    fam.critic = Zero()
    att = torch.zeros(1, 1)
    loss, logs = fam.critic_loss(t([[1.0, 3.0]]), t([[0.0, 1.0]]), att)
    assert close(loss, 2.0 - 0.5 * 0.5)
    assert close(logs["measure"], 2.0 + abs(0.5 * 2.0 - 0.5))
    fam.after_critic_step(logs)  # k += 0.1 (0.5·2 − 0.5)
    assert close(fam.k, 0.55)
    assert "k" in fam.state_dict()  # checkpoints keep k_t


# ---------------------------------------------------------------- Fisher
def test_fisher_constraint_and_lagrangian():
    f_real, f_fake = t([1.0, 3.0]), t([0.0, 2.0])
    # Ω̂ = ½((1 + 9)/2 + (0 + 4)/2) = 3.5
    assert close(second_moment_constraint(f_real, f_fake), -2.5)
    lagrangian, _ = augmented_lagrangian(f_real, f_fake, lam=0.5, rho=2.0)
    assert close(lagrangian, 1.0 + 0.5 * -2.5 - 0.5 * 2.0 * 6.25)
    fam = family("fisher", fisher_rho=2.0)
    fam.lam.fill_(0.5)
    fam.after_critic_step({"constraint": -2.5})  # λ ← λ − ρ(1 − Ω̂)
    assert close(fam.lam, 5.5)


# ---------------------------------------------------------------- InfoGAN
def test_info_mutual_information_term():
    # CE of uniform logits over 2 values = ln 2; ½‖(0.5, 0) − 0‖² = 0.125.
    loss = info_loss(t([[0.0, 0.0]]), t([1]), t([[0.5, 0.0]]), t([[0.0, 0.0]]))
    assert close(loss, LN2 + 0.125)


def test_info_latent_layout():
    fam = family("info", info_categories=3, info_continuous=2, latent_dim=4)
    z = fam.latent(5, torch.device("cpu"), torch.Generator().manual_seed(0))
    cat, cont = fam._codes
    assert z.shape == (5, 4 + 3 + 2)
    assert torch.equal(z[:, 4:7], torch.nn.functional.one_hot(cat, 3).float())
    assert torch.equal(z[:, 7:], cont) and float(cont.abs().max()) <= 1


# ---------------------------------------------------------------- encoder–decoders
def test_vae_kl():
    # −½[(1 + 0 − 1 − 1) + (1 + ln 2 − 0 − 2)] = 1 − ½ ln 2
    assert close(gaussian_kl(t([[1.0, 0.0]]), t([[0.0, LN2]])), 1 - 0.5 * LN2)
    assert close(gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4)), 0.0)


def test_bir_vae_mmd():
    # 1-d, kernel exp(−(a − b)²/2): 1 + 1 − 2·e^(−½)
    assert close(mmd(t([[0.0]]), t([[1.0]])), 2 - 2 * math.exp(-0.5))
    z = torch.randn(8, 3)
    assert close(mmd(z, z), 0.0)


def test_reconstruction_sums_dimensions():
    assert close(reconstruction(t([[1.0, 2.0], [0.0, 0.0]]), torch.zeros(2, 2)), (5.0 + 0.0) / 2)
