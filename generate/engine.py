"""The one training engine every generative family runs in.

It owns batching (random batches indexed from device tensors — no DataLoader over
Python tuples), critic iterations, gradient penalties, the f-CLSWGAN classification
regulariser, attribute noise, checkpoints with every RNG state, divergence checks,
timing and the progress bar. Model selection is not its business: ``fit`` takes an
epoch callback, which ``pipelines`` wires to evaluate's validation scorer.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from zsgm.core.errors import ZsgmError
from zsgm.core.files import atomic_torch_save
from zsgm.core.logs import ProgressLog, log
from zsgm.core.rng import rng_state, set_rng_state
from zsgm.core.training import adam, capture_cuda_graph, cuda_graphs_wanted, on_side_stream
from zsgm.generate.config import GeneratorConfig
from zsgm.generate.nets import ridge_map
from zsgm.generate.registry import get
from zsgm.generate.seen_classifier import train_seen_classifier


class DivergenceError(ZsgmError):
    """A loss became NaN or inf."""


@dataclass
class TrainData:
    features: torch.Tensor    # [n, D] float32, on the engine's device
    labels: torch.Tensor      # [n] class index (row of ``attributes``)
    attributes: torch.Tensor  # [C, A] class semantics, on the device

    def to(self, device: torch.device) -> "TrainData":
        return TrainData(self.features.to(device), self.labels.to(device), self.attributes.to(device))


EpochCallback = Callable[["Engine", int, dict], "dict | None"]


def gradient_penalty(score: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                     kind: str) -> torch.Tensor:
    """(‖∇ₓ score(x̂)‖₂ − 1)², averaged over the batch.

    ``gp``: x̂ between real and fake (Gulrajani et al. 2017). ``dragan``: x̂ between real
    and a perturbation of real, x + 0.5·std(x)·U[0,1) (Kodali et al. 2017).
    """
    alpha = torch.rand(real.shape[0], 1, device=real.device)
    if kind == "gp":
        other = fake
    elif kind == "dragan":
        other = real + 0.5 * real.std() * torch.rand_like(real)
    else:
        raise ValueError(f"unknown penalty '{kind}'")
    x = (alpha * real + (1 - alpha) * other).detach().requires_grad_(True)
    out = score(x)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return ((grad.norm(2, dim=1) - 1) ** 2).mean()


def _class_means(x: torch.Tensor, y: torch.Tensor, n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-class means of ``x`` [n_classes, D] (a class without rows gets 0) and row counts.
    Index arithmetic only: no host sync, so a CUDA graph can capture it."""
    sums = torch.zeros(n_classes, x.shape[1], device=x.device, dtype=x.dtype).index_add_(0, y, x)
    counts = torch.zeros(n_classes, device=x.device, dtype=x.dtype).index_add_(0, y, torch.ones_like(y, dtype=x.dtype))
    return sums / counts.clamp_min(1).unsqueeze(1), counts


def _center_distance(fake: torch.Tensor, y: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """Mean over the batch's classes of ‖generated class mean − real class mean‖²."""
    fake_means, counts = _class_means(fake, y, means.shape[0])
    present = (counts > 0).to(fake.dtype)
    return ((fake_means - means).pow(2).sum(1) * present).sum() / present.sum()


def epoch_text(logs: dict) -> str:
    """One epoch's history entry for a log line: its losses, and U / S / H where it was scored."""
    parts = [f"{k.removeprefix('loss_')} {v:.4g}" for k, v in logs.items()
             if k.startswith("loss_") and isinstance(v, (int, float))]
    if isinstance(logs.get("eval_H"), (int, float)):
        parts.append("U {:.1f} S {:.1f} H {:.1f}".format(*(logs.get(f"eval_{m}", float("nan")) for m in "USH")))
    return ", ".join(parts)


class Engine:
    def __init__(self, model: str, feature_dim: int, att_dim: int, config: GeneratorConfig,
                 device: torch.device | str = "cpu"):
        self.model, self.config, self.device = model, config, torch.device(device)
        self.family = get(model).cls(feature_dim, att_dim, config).to(self.device)
        self._setup_speed_options()
        betas = (config.beta1, config.beta2)
        lr = config.lr
        # a captured optimiser step must keep its step count on the device
        opt = {"betas": betas, **({"capturable": True} if self.graphs else {})}
        self.opt_g = adam(self.family.generator_parameters(), lr=lr, **opt) if not self.family.closed_form else None
        self.opt_c = adam(self.family.critic_parameters(), lr=config.lr_critic or lr, **opt) \
            if self.family.adversarial else None
        self.seen_clf: torch.nn.Module | None = None
        self.class_map: torch.Tensor | None = None
        self.class_means: torch.Tensor | None = None  # [C, D] real class means (centre regulariser)
        self.epoch = 0
        self.history: list[dict] = []
        self.att_scale: torch.Tensor | None = None  # per-attribute spread: the unit of attribute noise
        self.stopped = False  # early-stopped: a resumed run must not train on
        self.seconds = 0.0   # training time (epochs only)
        self.wall = 0.0      # training + epoch-callback (evaluation) time: what time-to-result is read from

    # ------------------------------------------------------------ speed options
    def _setup_speed_options(self) -> None:
        """``amp``: 'bf16' runs forward passes under bfloat16 autocast, on CUDA and on CPUs (with
        AVX512-BF16 or AMX a bf16 matrix product ran 2.4x the float32 one; without them it is
        emulated and slower). ``compile``: torch.compile the generator (the critic sits under
        the gradient penalty's double backward, which torch.compile does not support). Both
        default off, since they change the numbers; ``zsgm bench`` measures whether they pay.
        ``cuda_graphs``: auto (default) captures each generator iteration as one CUDA graph on
        a GPU, for the families whose steps keep no host-side state; off trains eagerly."""
        amp = str(self.config.amp or "off").lower()
        if amp not in ("off", "false", "bf16", "true"):
            raise ZsgmError(f"hp.amp must be 'off' or 'bf16', got '{amp}'")
        self.amp_dtype = torch.bfloat16 if amp in ("bf16", "true") and self.device.type in ("cuda", "cpu") else None
        compiled = self.config.compile and self.device.type == "cuda" and not self.family.closed_form
        if compiled:
            self.family.generator.compile()  # in place: state_dict keys stay as they are
        graphs = str(self.config.cuda_graphs).lower()
        # asked for and on CUDA: the seen classifier's steps are graphed then, the generator
        # iterations only where the family and the other options allow
        self.graphs_wanted = cuda_graphs_wanted(graphs, self.device, "hp")
        self.graphs = self.graphs_wanted and not compiled and not self.family.closed_form and self.family.graph_safe
        if graphs in ("on", "true") and not self.graphs:
            log.info("%s: cuda_graphs on, but not usable here (needs CUDA, no compile, a graph-safe family)",
                     self.model)
        self._graph = None  # (data, graph, static sums) once captured

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        # a graph cannot replay autocast's weight cache: it lives only as long as the region
        return torch.autocast(self.device.type, dtype=self.amp_dtype, cache_enabled=not self.graphs)

    # ------------------------------------------------------------ helpers
    def _noisy(self, att: torch.Tensor, std: float) -> torch.Tensor:
        return att + std * self._noise_unit(att) * torch.randn_like(att) if std > 0 else att

    def _noise_unit(self, att: torch.Tensor) -> torch.Tensor | float:
        """Attribute noise is measured in units of each attribute's spread across classes, so
        that one σ means the same for L2-normalised 312-d CUB attributes and 0..1 SUN ones
        (``noise_relative: false`` keeps raw units)."""
        if not self.config.noise.relative:
            return 1.0
        if self.att_scale is None:
            self.att_scale = att.std(0).clamp_min(1e-8) if att.shape[0] > 1 else torch.ones_like(att[0])
        return self.att_scale

    def _batch(self, data: TrainData, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, data.features.shape[0], (size,), device=self.device)
        y = data.labels[idx]
        return data.features[idx], data.attributes[y], y

    def prepare_regulariser(self, data: TrainData) -> None:
        """f-CLSWGAN: a softmax classifier pre-trained on the real training classes, frozen,
        whose cross-entropy on generated features is added to the generator loss; the real
        class means the centre regulariser pulls towards; and the generator's ridge prior.
        ``fit`` calls it; a caller that drives ``train_epoch`` itself (a benchmark) calls it
        first. Once only (the prior is a function of the data: a resumed run refits the same)."""
        generator = self.family.generator
        if generator.prior is not None:
            generator.prior.copy_(ridge_map(data.features, data.attributes[data.labels], self.config.prior_lambda))
        if self.config.center_weight > 0 and self.class_means is None:
            self.class_means, _ = _class_means(data.features, data.labels, data.attributes.shape[0])
        if self.config.cls_weight <= 0 or self.seen_clf is not None:
            return
        classes = torch.unique(data.labels)
        self.class_map = torch.full((data.attributes.shape[0],), -1, dtype=torch.long, device=self.device)
        self.class_map[classes] = torch.arange(len(classes), device=self.device)
        # its ~560 small steps (CUB, 20 epochs) are launch-bound on a GPU: graphed there, as the final classifiers
        self.seen_clf = train_seen_classifier(data.features, self.class_map[data.labels], len(classes),
                                              epochs=self.config.cls_pretrain_epochs,
                                              graphs=self.graphs_wanted)

    # ------------------------------------------------------------ one epoch
    def train_epoch(self, data: TrainData, steps: int | None = None) -> dict:
        """One epoch of ``steps`` generator iterations (each after the critic steps); by default
        ``steps_per_epoch``, else one pass over ``data`` in batches."""
        cfg = self.config
        # Small datasets give few steps per pass; ``steps_per_epoch`` sets the budget explicitly.
        n_iters = int(steps or cfg.steps_per_epoch or max(1, data.features.shape[0] // cfg.batch_size))
        critic_iters = cfg.critic_iters if self.family.adversarial else 0
        # Losses are summed as detached device tensors and read once per epoch: a float() per
        # step would force a host-device sync on every critic step of a GPU run.
        sums: dict[str, torch.Tensor | float] = {}
        counts = {"critic": critic_iters * n_iters, "generator": n_iters}
        self.family.train()

        def record(role: str, loss: torch.Tensor, logs: dict) -> None:
            self._accumulate(sums, role, loss, logs, counts[role])

        done = self._graph_iterations(data, n_iters, critic_iters, record, sums, counts) if self.graphs else 0
        for _ in range(n_iters - done):
            self._generator_iteration(data, critic_iters, record)
        return self._read_sums(sums)

    def _generator_iteration(self, data: TrainData, critic_iters: int, record) -> None:
        """``critic_iters`` critic steps, then one generator step; ``record(role, loss, logs)``
        gets every step's loss and logs. Pure device work (no host sync): a CUDA graph can
        capture it whole."""
        fam, cfg = self.family, self.config
        bs, noise, gp_weight = cfg.batch_size, cfg.noise.train, cfg.gp_weight
        amp = self._autocast
        for _ in range(critic_iters):
            real, att, _y = self._batch(data, bs)
            att = self._noisy(att, noise)
            with amp():
                with torch.no_grad():
                    fake = fam.sample(att)
                loss, logs = fam.critic_loss(real, fake, att)
                if fam.penalty:
                    gp = gradient_penalty(fam.penalty_score(fake, att), real, fake, fam.penalty)
                    loss = loss + gp_weight * gp
                    logs["penalty"] = gp.detach()
            self.opt_c.zero_grad(set_to_none=True)
            loss.backward()
            self.opt_c.step()
            fam.after_critic_step(logs)
            record("critic", loss, logs)
        real, att, y = self._batch(data, bs)
        att = self._noisy(att, noise)
        with amp():
            fake = fam.sample(att)
            loss, logs = fam.generator_loss(real, fake, att)
            if self.seen_clf is not None:
                cls = F.cross_entropy(self.seen_clf(fake).float(), self.class_map[y])
                loss = loss + cfg.cls_weight * cls
                logs["cls"] = cls.detach()
            if self.class_means is not None:
                center = _center_distance(fake.float(), y, self.class_means)
                loss = loss + cfg.center_weight * center
                logs["center"] = center.detach()
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        record("generator", loss, logs)

    # ------------------------------------------------------------ CUDA graphs
    def _graph_iterations(self, data: TrainData, n_iters: int, critic_iters: int, record, sums: dict,
                          counts: dict) -> int:
        """Run generator iterations as replays of one captured CUDA graph; returns how many
        ran (0 for an epoch too short to capture: the caller trains it eagerly). On a GPU these small
        MLPs are bound by kernel-launch and Python overhead, not arithmetic: a replay
        launches an iteration's few hundred kernels at once. ``record`` sums the eager warm-up
        iterations into ``sums``; the replays are added to it at the end."""
        done = 0
        if self._graph is None or self._graph[0] is not data:
            warmup = 3  # eager iterations on a side stream: allocator, optimiser state, cuBLAS handles
            if n_iters <= warmup:
                return 0
            on_side_stream(self.device, lambda: self._generator_iteration(data, critic_iters, record), warmup)
            done = warmup
            # static sums, allocated outside the capture (an allocation inside would be replayed
            # as a fresh zero-fill); the warm-up told us every key the steps log
            keys = {key: torch.zeros((), device=self.device) for key in sums}
            graph = capture_cuda_graph(
                lambda: self._generator_iteration(data, critic_iters, lambda role, loss, logs: self._graph_record(
                    keys, role, loss, logs)),
                self.model, "re-run with --set cuda_graphs=off (hp.cuda_graphs: off), and mark the family "
                            "graph_safe = False")
            self._graph = (data, graph, keys)
        _data, graph, keys = self._graph
        for buf in keys.values():
            buf.zero_()
        for _ in range(n_iters - done):
            graph.replay()
        for key, buf in keys.items():
            role = "critic" if key == "loss_critic" or key.startswith("critic_") else "generator"
            sums[key] = sums.get(key, 0.0) + buf / counts[role]
        return n_iters

    @staticmethod
    def _step_values(role: str, loss: torch.Tensor, logs: dict):
        """(key, value) of one step's loss and logs: ``loss_<role>``, ``<role>_<log>``; values
        are detached float tensors (no sync) or floats."""
        yield f"loss_{role}", loss.detach().float()
        for k, v in logs.items():
            yield f"{role}_{k}", v.detach().float() if isinstance(v, torch.Tensor) else float(v)

    @classmethod
    def _graph_record(cls, keys: dict, role: str, loss: torch.Tensor, logs: dict) -> None:
        """Inside a capture: add this step's values to the static sums (zeroed before each
        epoch's replays)."""
        for key, v in cls._step_values(role, loss, logs):
            keys[key].add_(v.reshape(()) if isinstance(v, torch.Tensor) else v)

    def _accumulate(self, sums: dict, role: str, loss: torch.Tensor, logs: dict, count: int) -> None:
        """Add this step's loss and logs (floats or tensors) to the epoch means, without a sync."""
        for key, v in self._step_values(role, loss, logs):
            sums[key] = sums.get(key, 0.0) + v / count

    def _read_sums(self, sums: dict) -> dict:
        """The epoch means as floats (one transfer); a non-finite loss is a divergence."""
        keys = list(sums)
        tensors = [k for k in keys if isinstance(sums[k], torch.Tensor)]
        values = dict(zip(keys, (float(sums[k]) for k in keys))) if not tensors else {
            **{k: float(sums[k]) for k in keys if k not in tensors},
            **dict(zip(tensors, torch.stack([sums[k].reshape(()) for k in tensors]).tolist()))}
        for role in ("critic", "generator"):
            value = values.get(f"loss_{role}")
            if value is not None and not math.isfinite(value):
                raise DivergenceError(
                    f"{self.model}: the {role} loss became {value} in epoch {self.epoch + 1}; "
                    f"lower the learning rate (hp.lr) or the penalty weight and re-run; the last good "
                    f"checkpoint (if any) is kept in the run folder")
        return {k: values[k] for k in keys}

    # ------------------------------------------------------------ the loop
    def fit(self, data: TrainData, epochs: int, on_epoch: EpochCallback | None = None,
            checkpoint: str | Path | None = None, progress: bool = True, desc: str = "",
            sink: Callable[[dict], None] | None = None, lines: bool | None = None) -> "Engine":
        """Train up to ``epochs`` (from where a resumed engine stands). ``progress`` draws a tqdm bar;
        without one (``lines`` None) a log line goes out on the first and the last epoch, on every
        epoch the callback scored, and otherwise at most every ``$ZSGM_PROGRESS_SECONDS`` (30 s):
        epoch, losses, U / S / H when scored, elapsed, ETA (``lines`` False: none). ``sink`` gets each
        epoch's history entry as it is appended (a TensorBoard writer)."""
        data = data.to(self.device)
        if self.att_scale is None:
            self.att_scale = data.attributes.float().std(0).clamp_min(1e-8)  # every class's semantics
        if self.family.closed_form:
            if self.epoch == 0:
                self.family.fit_closed_form(data.features, data.attributes[data.labels])
                self.epoch = 1
                self.history.append({"epoch": 1})
                if on_epoch:
                    on_epoch(self, 1, {})
            return self
        if self.stopped:
            return self  # resumed from a run that had stopped early: it stays stopped
        self.prepare_regulariser(data)
        bar = tqdm(range(self.epoch, epochs), total=epochs, initial=self.epoch, disable=not progress,
                   desc=desc or self.model, unit="ep", leave=False)
        report = ProgressLog(f"{desc or self.model}: epoch", epochs, start=self.epoch,
                             enabled=not progress if lines is None else lines)
        last_save = time.perf_counter()
        for _ in bar:
            t0 = time.perf_counter()
            logs = self.train_epoch(data)
            self.epoch += 1
            self.seconds += time.perf_counter() - t0
            logs = {"epoch": self.epoch, **logs, "seconds": round(self.seconds, 3)}
            extra = on_epoch(self, self.epoch, logs) if on_epoch else None
            stop = bool(extra and extra.pop("stop", False))
            logs.update(extra or {})
            self.wall += time.perf_counter() - t0
            logs["wall"] = round(self.wall, 3)
            self.history.append(logs)
            if sink is not None:
                sink(logs)
            report.step(self.epoch, epoch_text(logs), force="eval_H" in logs)
            bar.set_postfix({k: f"{v:.3g}" for k, v in logs.items()
                             if k.startswith("loss_") or k in ("val_H", "H")})
            self.stopped = stop  # saved with the epoch, so that a kill cannot separate the two
            # A checkpoint at most every ``checkpoint_seconds`` (a kill loses no more than that) and
            # at the end: a seed-budget checkpoint is ~250 MB (0.7 s to write on a VM), more than a
            # GPU epoch, so a run shorter than that writes only the last one.
            due = time.perf_counter() - last_save >= self.config.checkpoint_seconds
            if checkpoint and (due or stop or self.epoch >= epochs):
                self.save(checkpoint)
                last_save = time.perf_counter()
            if stop:
                log.info("%s: early stop after epoch %d", self.model, self.epoch)
                break
        return self

    # ------------------------------------------------------------ synthesis
    @torch.no_grad()
    def synthesize(self, att: torch.Tensor, n_per_class: int, gen: torch.Generator | None = None,
                   chunk: int = 32768) -> torch.Tensor:
        """``n_per_class`` features for each row of ``att`` [K, A] (unseen classes), class-major, in
        one batched generator call per ``chunk`` rows. The unseen side of the attribute-noise trick
        (``config.noise.unseen``) is added to the first ``noise.fraction`` of every class's samples."""
        fam = self.family
        fam.eval()
        noise_std, noise_fraction = self.config.noise.unseen, self.config.noise.fraction
        att = att.to(self.device).float()
        rows = att.repeat_interleave(n_per_class, dim=0)
        if noise_std > 0 and noise_fraction > 0:
            k = int(round(n_per_class * noise_fraction))
            mask = (torch.arange(n_per_class, device=self.device) < k).repeat(att.shape[0]).unsqueeze(1)
            eps = torch.randn(rows.shape, device=self.device, generator=gen)
            rows = rows + noise_std * self._noise_unit(att) * eps * mask
        with self._autocast():
            out = torch.cat([fam.sample(rows[i:i + chunk], gen).float() for i in range(0, rows.shape[0], chunk)]) \
                if rows.shape[0] else torch.empty(0, fam.feature_dim, device=self.device)
        fam.train()
        return out

    # ------------------------------------------------------------ state
    def state_dict(self) -> dict:
        return {
            "model": self.model, "config": self.config.to_dict(), "epoch": self.epoch, "seconds": self.seconds,
            "wall": self.wall,
            "history": self.history, "stopped": self.stopped, "family": self.family.state_dict(),
            "opt_g": self.opt_g.state_dict() if self.opt_g else None,
            "opt_c": self.opt_c.state_dict() if self.opt_c else None,
            "seen_clf": self.seen_clf.state_dict() if self.seen_clf is not None else None,
            "class_map": self.class_map, "att_scale": self.att_scale, "rng": rng_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        if state["model"] != self.model:
            raise ZsgmError(f"checkpoint is of model '{state['model']}', not '{self.model}'")
        self.family.load_state_dict(state["family"])
        self._graph = None  # a captured graph holds the old optimiser state tensors
        if self.opt_g and state["opt_g"]:
            self.opt_g.load_state_dict(state["opt_g"])
        if self.opt_c and state["opt_c"]:
            self.opt_c.load_state_dict(state["opt_c"])
        if state.get("seen_clf") is not None:
            n_cls = state["seen_clf"]["weight"].shape[0]
            self.seen_clf = torch.nn.Linear(self.family.feature_dim, n_cls).to(self.device)
            self.seen_clf.load_state_dict(state["seen_clf"])
            self.seen_clf.requires_grad_(False)
            self.class_map = state["class_map"].to(self.device)
        self.epoch, self.seconds, self.history = state["epoch"], state["seconds"], list(state["history"])
        self.stopped = bool(state.get("stopped", False))
        if state.get("att_scale") is not None:
            self.att_scale = state["att_scale"].to(self.device)
        self.wall = float(state.get("wall", self.seconds))
        set_rng_state(state["rng"])

    def save(self, path: str | Path) -> None:
        atomic_torch_save(self.state_dict(), path)

    def resume(self, path: str | Path) -> bool:
        """Load ``path`` if it exists; True when a run continues from it."""
        path = Path(path)
        if not path.is_file():
            return False
        try:
            state = torch.load(path, map_location=self.device, weights_only=False)
        except Exception as exc:
            raise ZsgmError(f"checkpoint {path} is unreadable ({exc}); delete it to start over") from exc
        self.load_state_dict(state)
        log.info("resumed %s from %s at epoch %d", self.model, path, self.epoch)
        return True
