"""f-GAN ``formulation: study``: the seed study's losses (GAN/fGAN.py of its repository),
checked against the formulas as the study wrote them, on random critic outputs."""
from __future__ import annotations

import pytest
import torch

from zsgm.core.errors import ZsgmError
from zsgm.testing import planted_featureset, planted_hp
from zsgm.generate.engine import Engine, TrainData
from zsgm.generate.families.fgan import DIVERGENCES, STUDY_TERMS, STUDY_WEIGHT_REG
from zsgm.generate.families.gan_losses import bce_critic, nonsaturating_generator
from zsgm.generate.registry import get
from zsgm.pipelines.config import generator_defaults

E = torch.exp

# The study's code, transcribed literally (issue 14's table): (critic loss, generator loss).
WRITTEN = {
    "total_variation": (lambda r, f: -((0.5 * torch.tanh(r)).mean() - (0.5 * torch.tanh(f)).mean()),
                        lambda f: -(0.5 * torch.tanh(f)).mean()),
    "forward_kl": (lambda r, f: -(r.mean() - E(f - 1).mean()), lambda f: -E(f - 1).mean()),
    "reverse_kl": (lambda r, f: -((-E(r)).mean() - (-1 - f).mean()), lambda f: -(-1 - f).mean()),
    "pearson": (lambda r, f: -(r.mean() - (0.25 * f ** 2 + f).mean()), lambda f: -(0.25 * f ** 2 + f).mean()),
    "hellinger": (lambda r, f: -((1 - E(r)).mean() - ((1 - E(f)) / E(f)).mean()),
                  lambda f: -((1 - E(f)) / E(f)).mean()),
    "jensen_shannon": (lambda r, f: -((torch.tensor(2.) - (1 + E(-r))).mean() - (-(torch.tensor(2.) - E(f))).mean()),
                       lambda f: -(-(torch.tensor(2.) - E(f))).mean()),
}


def fam(name: str, **hp):
    config = generator_defaults(f"fgan_{name}", hidden=8, **hp)
    return get(f"fgan_{name}").cls(3, 2, config)


def test_every_divergence_has_a_study_form():
    assert set(WRITTEN) == set(STUDY_TERMS) == set(DIVERGENCES)


@pytest.mark.parametrize("name", sorted(WRITTEN))
def test_study_losses_equal_the_studys_formulas(name):
    f = fam(name, formulation="study")
    g = torch.Generator().manual_seed(hash(name) % 1000)
    for scale in (0.1, 1.0, 3.0):
        v_r = scale * torch.randn(257, 1, generator=g, dtype=torch.float64)
        v_f = scale * torch.randn(257, 1, generator=g, dtype=torch.float64)
        d_written, g_written = WRITTEN[name]
        assert torch.allclose(f.d_loss(v_r, v_f), d_written(v_r, v_f), rtol=1e-12, atol=1e-12)
        assert torch.allclose(f.g_loss(None, v_f), g_written(v_f), rtol=1e-12, atol=1e-12)
    # Against the paper's formulation: for forward KL and Pearson the critic's loss is the same
    # and the generator's differs; for total variation both are the same (f* is the identity)
    # and only the study's gradient penalty and weight regulariser differ.
    paper = fam(name)
    same_g = torch.allclose(paper.g_loss(None, v_f), f.g_loss(None, v_f))
    assert same_g == (name == "total_variation")
    assert paper.penalty is None and f.penalty == "gp"


@pytest.mark.parametrize("name", ["hellinger", "jensen_shannon"])
def test_study_forms_stay_finite_where_the_written_ones_do_not(name):
    f = fam(name, formulation="study")
    v = torch.tensor([[-200.0], [0.5], [200.0]])
    written_d, _ = WRITTEN[name]
    assert not torch.isfinite(written_d(v, v))          # inf/inf or 1 - (1 + e^200) in float32
    assert torch.isfinite(f.d_loss(v[1:2], v[1:2]))
    # Where both are finite in float32, the same values.
    w = torch.linspace(-5, 5, 41).reshape(-1, 1)
    assert torch.allclose(f.d_loss(w, w.flip(0)), written_d(w, w.flip(0)), rtol=1e-5, atol=1e-5)


def test_js_study_and_nsgan_differ_but_js_paper_is_nsgan():
    v_r, v_f = torch.randn(64, 1, dtype=torch.float64), torch.randn(64, 1, dtype=torch.float64)
    paper, study = fam("jensen_shannon"), fam("jensen_shannon", formulation="study")
    # The paper's JS bound with the non-saturating generator loss is BCE up to a constant: the
    # same gradients as nsgan (why the two gave identical numbers to every digit).
    assert torch.allclose(paper.d_loss(v_r, v_f) + 2 * torch.log(torch.tensor(2.0, dtype=torch.float64)),
                          bce_critic(v_r, v_f))
    assert torch.allclose(paper.g_loss(None, v_f) + torch.log(torch.tensor(2.0, dtype=torch.float64)),
                          nonsaturating_generator(v_f))
    assert not torch.allclose(study.d_loss(v_r, v_f) + 2 * torch.log(torch.tensor(2.0, dtype=torch.float64)),
                              bce_critic(v_r, v_f))
    x = v_f.clone().requires_grad_(True)
    (g_ns,) = torch.autograd.grad(nonsaturating_generator(x), x)
    x2 = v_f.clone().requires_grad_(True)
    (g_study,) = torch.autograd.grad(study.g_loss(None, x2), x2)
    assert not torch.allclose(g_ns, g_study)


def test_js_study_trains_differently_from_nsgan():
    fs = planted_featureset(n_classes=12, n_unseen=3, n_val=0, n_per_class=8, feature_dim=16, seed=0)
    x, y = fs.take(fs.trainval_loc)
    data = TrainData(x, y, fs.attributes.float())
    hp = {"hidden": 32, "batch_size": 16, "cls_pretrain_epochs": 1, "lr": 1e-3, "critic_iters": 1,
          "latent_dim": 4, "cuda_graphs": "off"}

    def run(model: str, **extra) -> torch.Tensor:
        torch.manual_seed(0)
        config = generator_defaults(model, **{**planted_hp(model), **hp, **extra})
        eng = Engine(model, 16, fs.attributes.shape[1], config)
        eng.fit(data, 2, progress=False)
        return eng.synthesize(fs.attributes[:3].float(), 4, gen=torch.Generator().manual_seed(1))

    ns, js_paper = run("nsgan"), run("fgan_jensen_shannon")
    js_study = run("fgan_jensen_shannon", formulation="study")
    assert torch.allclose(ns, js_paper, atol=1e-5)      # same gradients: the old identical numbers
    assert not torch.allclose(ns, js_study, atol=1e-3)  # the study's formulation is another model


def test_study_formulation_adds_penalty_and_weight_reg():
    paper, study = fam("forward_kl"), fam("forward_kl", formulation="study")
    assert paper.penalty is None and paper.weight_reg == 0.0
    assert study.penalty == "gp" and study.weight_reg == STUDY_WEIGHT_REG
    assert fam("forward_kl", formulation="study", weight_reg=0).weight_reg == 0.0
    real, fake, att = torch.randn(5, 3), torch.randn(5, 3), torch.randn(5, 2)
    loss_study, logs = study.generator_loss(real, fake, att)
    reg = sum(p.pow(2).sum() for n, p in study.generator.named_parameters() if n.endswith("weight"))
    plain = study.g_loss(None, study.critic_score(fake, att))
    assert torch.allclose(loss_study, plain + STUDY_WEIGHT_REG * reg)
    assert "weight_reg" in logs


def test_unknown_formulation_is_refused():
    with pytest.raises(ZsgmError, match="formulation must be one of paper, study"):
        fam("pearson", formulation="iclr")
