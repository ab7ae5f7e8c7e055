"""A faithful, straightforward reference of the field's GZSL training loop, for ``zsgm bench``.

This is how f-CLSWGAN (Xian et al. 2018) and the scripts that copied it (the seed study's
included) train and evaluate, written plainly so that ``zsgm bench`` can time it against the
engine on the same data, the same networks and losses, the same number of generator epochs,
in the same process:

* generator training: ``ceil``-free ``n_train // batch_size`` generator steps per epoch, each
  after ``critic_iters`` critic steps; every batch drawn with a CPU ``randperm`` over the
  whole training set, sliced, and copied to the device (``data.next_batch`` +
  ``input_res.copy_``); losses read with ``.item()`` every step (the logging of those
  scripts);
* after **every** epoch: synthetic features generated class by class in a Python loop
  (``generate_syn_feature``), moved to the CPU, concatenated with the real ones, then a
  **fresh** final classifier trained for 50 epochs over a Python list of per-sample
  ``(feature, label)`` tuples through a ``DataLoader`` (default collation), and the test sets
  scored; the best epoch on test is kept (the field's selection, i.e. oracle).

The networks and losses are the engine's own family objects (the comparison is about the
loop, not the model), and the classifier is of the same kind as the pair's (linear softmax,
or the generative-prototype network), with the field's 50 epochs.

Nothing in the product imports this module: it exists to be measured against.
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from zsgm.evaluate.classifiers.prototype import PrototypeNet
from zsgm.evaluate.metrics import gzsl_evaluate
from zsgm.core.rng import seed_everything
from zsgm.generate.config import GeneratorConfig
from zsgm.generate.engine import gradient_penalty
from zsgm.generate.registry import get as get_model
from zsgm.generate.seen_classifier import train_seen_classifier


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def generate_syn_feature(family, unseen: torch.Tensor, attributes: torch.Tensor, num: int, noise_std: float,
                         noise_fraction: float, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """f-CLSWGAN's ``generate_syn_feature``: one generator call per class, copied to the CPU."""
    feats, labels = [], []
    family.eval()
    k = int(round(num * noise_fraction))
    with torch.no_grad():
        for c in unseen.tolist():
            att = attributes[c].to(device).unsqueeze(0).repeat(num, 1)
            if noise_std > 0 and k > 0:
                att[:k] += noise_std * torch.randn(k, att.shape[1], device=device)
            out = family.sample(att)
            feats.append(out.cpu())
            labels.append(torch.full((num,), c, dtype=torch.long))
    family.train()
    return torch.cat(feats), torch.cat(labels)


def train_classifier_tuples(kind: str, x: torch.Tensor, y: torch.Tensor, n_classes: int,
                            class_att: torch.Tensor, device: torch.device, epochs: int = 50,
                            batch_size: int = 256, hidden: int = 1024) -> nn.Module:
    """A fresh final classifier, trained over a Python list of per-sample tuples via a DataLoader."""
    dataset = [(x[i], y[i]) for i in range(x.shape[0])]
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True)
    if kind == "prototype":
        net = PrototypeNet(class_att.shape[1], x.shape[1], hidden, 5.0).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=5e-4, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=25, gamma=0.1)
        att = class_att.to(device)
        logits = lambda b: net(b, att)  # noqa: E731
    else:
        net = nn.Linear(x.shape[1], n_classes).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.5, 0.999))
        sched = None
        logits = net
    for _ in range(epochs):
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            loss = F.cross_entropy(logits(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            _ = loss.item()  # the per-step logging of those scripts
        if sched is not None:
            sched.step()
    net.eval()
    net.logits = logits
    return net


class ReferenceGAN:
    """The field's generator training loop around one of the engine's families."""

    def __init__(self, model: str, config: GeneratorConfig, train_x: torch.Tensor, train_y: torch.Tensor,
                 attributes: torch.Tensor, seen: torch.Tensor, device: torch.device):
        d, a = train_x.shape[1], attributes.shape[1]
        self.config, self.device, self.train_x, self.train_y, self.attributes = config, device, train_x, train_y, \
            attributes
        self.family = get_model(model).cls(d, a, config).to(device)
        betas = (config.beta1, config.beta2)
        self.opt_g = torch.optim.Adam(self.family.generator_parameters(), lr=config.lr, betas=betas)
        self.opt_c = torch.optim.Adam(self.family.critic_parameters(), lr=config.lr_critic or config.lr, betas=betas)
        self.bs, self.critic_iters = config.batch_size, config.critic_iters
        self.noise = config.noise.train  # those scripts' noise is in raw attribute units
        self.gp_weight = config.gp_weight
        self.seen_clf, self.class_map = None, None
        if config.cls_weight > 0:  # f-CLSWGAN pre-trains its seen classifier too
            class_map = torch.full((attributes.shape[0],), -1, dtype=torch.long)
            class_map[seen] = torch.arange(len(seen))
            self.seen_clf = train_seen_classifier(train_x.to(device), class_map[train_y].to(device), len(seen),
                                                  epochs=config.cls_pretrain_epochs)
            self.class_map = class_map.to(device)
        self.input_res = torch.empty(self.bs, d, device=device)
        self.input_att = torch.empty(self.bs, a, device=device)
        self.input_label = torch.empty(self.bs, dtype=torch.long, device=device)

    def next_batch(self) -> None:
        idx = torch.randperm(self.train_x.shape[0])[:self.bs]
        self.input_res.copy_(self.train_x[idx])
        self.input_att.copy_(self.attributes[self.train_y[idx]])
        self.input_label.copy_(self.train_y[idx])

    def _att(self) -> torch.Tensor:
        return self.input_att + self.noise * torch.randn_like(self.input_att) if self.noise > 0 else self.input_att

    def train_iters(self, n_iters: int | None = None) -> None:
        """``n_iters`` generator steps (default one epoch: n_train // batch_size)."""
        fam = self.family
        fam.train()
        for _ in range(n_iters or max(1, self.train_x.shape[0] // self.bs)):
            for p in fam.critic_parameters():
                p.requires_grad = True
            for _ in range(self.critic_iters):
                self.next_batch()
                att = self._att()
                with torch.no_grad():
                    fake = fam.sample(att)
                loss, logs = fam.critic_loss(self.input_res, fake, att)
                gp = gradient_penalty(fam.penalty_score(fake, att), self.input_res, fake, fam.penalty) \
                    if fam.penalty else torch.zeros((), device=self.device)
                loss = loss + self.gp_weight * gp
                self.opt_c.zero_grad()
                loss.backward()
                self.opt_c.step()
                fam.after_critic_step(logs)
                _ = loss.item(), gp.item()  # the per-step logging of those scripts
            for p in fam.critic_parameters():
                p.requires_grad = False
            self.next_batch()
            att = self._att()
            fake = fam.sample(att)
            loss, _logs = fam.generator_loss(self.input_res, fake, att)
            if self.seen_clf is not None:
                loss = loss + self.config.cls_weight * F.cross_entropy(self.seen_clf(fake),
                                                                             self.class_map[self.input_label])
            self.opt_g.zero_grad()
            loss.backward()
            self.opt_g.step()
            _ = loss.item()
        for p in fam.critic_parameters():
            p.requires_grad = True


def reference_run(model: str, classifier: str, config: GeneratorConfig, epochs: int, train_x: torch.Tensor,
                  train_y: torch.Tensor, attributes: torch.Tensor, seen: torch.Tensor, unseen: torch.Tensor,
                  test_seen: tuple[torch.Tensor, torch.Tensor], test_unseen: tuple[torch.Tensor, torch.Tensor],
                  device: torch.device, clf_epochs: int = 50, clf_batch_size: int = 256,
                  clf_hidden: int = 1024, seed: int = 0) -> dict:
    """Train ``epochs`` generator epochs the field's way; returns wall time, the per-epoch
    history and the best (oracle) H. Inputs are normalised features on the CPU. Seeded, as
    those scripts are (``manualSeed``): a repeat differs in time, not in H. The ``clf_*`` values
    are the field's final classifier (f-CLSWGAN's and the seed's), not zsgm's defaults."""
    seed_everything(seed)
    t_start = time.perf_counter()
    gan = ReferenceGAN(model, config, train_x, train_y, attributes, seen, device)
    all_classes = torch.cat([seen, unseen])
    local = torch.full((attributes.shape[0],), -1, dtype=torch.long)
    local[all_classes] = torch.arange(len(all_classes))
    seen_mask = torch.zeros(attributes.shape[0], dtype=torch.bool)
    seen_mask[seen] = True
    history, best = [], None
    for epoch in range(1, epochs + 1):
        gan.train_iters()
        # ---- the per-epoch evaluation of those scripts
        syn_x, syn_y = generate_syn_feature(gan.family, unseen, attributes, config.n_synth, config.noise.unseen,
                                            config.noise.fraction, device)
        x = torch.cat([train_x, syn_x])
        y = local[torch.cat([train_y, syn_y])]
        clf = train_classifier_tuples(classifier, x, y, len(all_classes), attributes[all_classes], device,
                                      clf_epochs, clf_batch_size, clf_hidden)
        with torch.no_grad():
            def scores(xe: torch.Tensor) -> torch.Tensor:
                out = torch.full((xe.shape[0], attributes.shape[0]), float("-inf"))
                logit = clf.logits(xe.to(device))
                if classifier == "prototype":  # the seed's seen-logit damping
                    logit = logit * torch.where(seen_mask[all_classes].to(device), 0.95, 1.0)
                out[:, all_classes] = torch.softmax(logit, 1).cpu()
                return out

            res = gzsl_evaluate(scores(test_seen[0]), test_seen[1], scores(test_unseen[0]), test_unseen[1],
                                seen_mask)
        _sync(device)
        history.append({"epoch": epoch, "H": res.H, "U": res.U, "S": res.S,
                        "wall": round(time.perf_counter() - t_start, 3)})
        if best is None or res.H > best["H"]:
            best = {"epoch": epoch, "H": res.H, "U": res.U, "S": res.S, "zsl": res.zsl}
    return {"seconds": time.perf_counter() - t_start, "history": history, "best": best}
