"""The typed configs: one builder (pipelines.config.resolve) from the YAML layers and the run, no
defaults in code, every key read by exactly one dataclass, attribute noise as one concept."""
from __future__ import annotations

import dataclasses

import pytest

from zsgm.core.errors import ZsgmError
from zsgm.generate.config import GeneratorConfig, engine_keys
from zsgm.generate.registry import MODELS
from zsgm.pipelines import config as config_mod
from zsgm.pipelines.config import RunConfig, SelectionConfig, classifier_defaults, hp_owners, resolve
from zsgm.pipelines.params import HP, inferred


def test_no_dataclass_field_has_a_default_in_code():
    """The YAML is the single source of defaults: GeneratorConfig, every family's Params, every
    classifier's Options and SelectionConfig declare types only."""
    from zsgm.evaluate.classifiers import CLASSIFIERS

    classes = [GeneratorConfig, SelectionConfig, *(e.cls.Params for e in MODELS.values()),
               *(e.cls.Options for e in CLASSIFIERS.values())]
    for cls in classes:
        for f in dataclasses.fields(cls):
            assert f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING, \
                f"{cls.__qualname__}.{f.name} has a default in code"


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_key_is_read_by_one_dataclass_and_declared(model):
    """The shipped layers resolve for every family, every key they set is read by exactly one
    config, and each is declared in pipelines/params.py with a kind that matches its annotation."""
    rc = resolve(RunConfig(model=model))
    owners = hp_owners(model)
    engine = set(engine_keys())
    family = {f.name for f in dataclasses.fields(type(rc.generator.family))}
    selection = {f.name for f in dataclasses.fields(SelectionConfig)}
    assert not (engine & family or engine & selection or family & selection)
    assert set(owners) == engine | family | selection
    for key in owners:
        assert key in HP, f"{key}: declare its type and range in pipelines/params.py HP"
    annotations = {f.name: f.type for cls in (GeneratorConfig, type(rc.generator.family), SelectionConfig)
                   for f in dataclasses.fields(cls)}
    for key, kind in (("epochs", "int"), ("lr", "float"), ("compile", "bool")):
        assert annotations[key] == kind and HP[key].kind == inferred(kind).kind


def test_a_key_nobody_reads_and_a_missing_default_are_refused(monkeypatch):
    with pytest.raises(ZsgmError, match=r"--set: unknown hyper-parameter\(s\) \['critic_dim'\] for model 'wgan'"):
        resolve(RunConfig(model="wgan", hp={"critic_dim": 8}))
    layers = config_mod.layered_model_defaults

    def without_critic_dim(model):
        return [(path, {k: v for k, v in hp.items() if k != "critic_dim"}) for path, hp in layers(model)]

    monkeypatch.setattr(config_mod, "layered_model_defaults", without_critic_dim)
    with pytest.raises(ZsgmError, match=r"no default for hyper-parameter\(s\) \['critic_dim'\] of model 'cramer'"
                                        r": add them to pipelines/configs/models/cramer.yaml"):
        resolve(RunConfig(model="cramer"))


def test_one_way_in_for_epochs_and_eval_every():
    with pytest.raises(ZsgmError, match="--set epochs: use --epochs"):
        resolve(RunConfig(hp={"epochs": 3}))
    with pytest.raises(ZsgmError, match="--set eval_every: use --eval-every"):
        resolve(RunConfig(hp={"eval_every": 3}))
    rc = resolve(RunConfig(epochs=3, eval_every=2))
    assert rc.generator.epochs == 3 and rc.selection.eval_every == 2


@pytest.mark.parametrize("switch, train, unseen", [("on", 0.08, 0.3), ("off", 0.0, 0.0), ("train", 0.08, 0.0),
                                                   ("synthesis", 0.0, 0.3)])
def test_attribute_noise_has_two_sides_with_their_own_switch(switch, train, unseen):
    rc = resolve(RunConfig(noise=switch))
    assert (rc.generator.noise.train, rc.generator.noise.unseen) == (train, unseen)
    assert rc.generator.noise.fraction == 0.5
    # the switch is in the run's identity, so each side's ablation is its own run
    assert len({RunConfig(noise=s).run_id() for s in ("on", "off", "train", "synthesis")}) == 4


def test_noise_bool_of_older_records_still_reads():
    assert RunConfig.from_dict({"noise": False}).noise == "off" and RunConfig.from_dict({"noise": True}).noise == "on"


def test_the_engine_reads_each_side_of_the_noise_from_its_config():
    """Training noise touches the attributes of training batches only, synthesis noise those of the
    first ``fraction`` of each unseen class's rows only; each follows its own switch."""
    import torch

    from zsgm.generate.engine import Engine, TrainData

    def seen_rows(switch: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rc = resolve(RunConfig(model="wgan", noise=switch, hp={"hidden": 8, "cls_weight": 0.0, "batch_size": 4,
                                                                "steps_per_epoch": 1, "critic_iters": 1}))
        eng = Engine("wgan", 4, 5, rc.generator)
        att = torch.rand(3, 5, generator=torch.Generator().manual_seed(0))
        rows: list[torch.Tensor] = []
        sample = eng.family.sample
        eng.family.sample = lambda a, gen=None: (rows.append(a.detach().clone()), sample(a, gen))[1]
        eng.fit(TrainData(torch.rand(12, 4), torch.arange(12) % 3, att), 1, progress=False)
        trained = torch.cat(rows)
        rows.clear()
        eng.synthesize(att, 4)
        return att, trained, torch.cat(rows).view(3, 4, 5)

    for switch, train_on, synth_on in (("on", True, True), ("off", False, False), ("train", True, False),
                                       ("synthesis", False, True)):
        att, trained, synth = seen_rows(switch)
        on_a_class_row = (trained.unsqueeze(1) == att.unsqueeze(0)).all(-1).any(1)
        assert bool((~on_a_class_row).all()) == train_on, switch
        noisy = (synth != att.unsqueeze(1)).any(-1)  # [class, row]
        assert noisy[:, :2].all().item() == synth_on and not noisy[:, 2:].any(), switch  # fraction 0.5 of 4


def test_classifier_options_come_from_its_yaml_and_the_layers():
    rc = resolve(RunConfig(clf_hp={"epochs": 3}))  # the demo layer sets the prototype's hidden 256
    assert rc.classifier.options["epochs"] == 3 and rc.classifier.options["hidden"] == 256
    assert rc.classifier.options["lr"] == classifier_defaults("prototype")["lr"]
    assert rc.classifier.search == {"scale": [20.0, 50.0]}
    assert "scale" not in resolve(RunConfig(clf_hp={"scale": 30.0})).classifier.search  # fixed: not searched
    assert [c["scale"] for c in rc.classifier.candidates()] == [20.0, 50.0]


def test_the_record_holds_the_resolved_config_and_it_round_trips():
    rc = resolve(RunConfig(model="began", noise="train"))
    d = rc.to_dict()
    assert d["generator"]["family"]["began_gamma"] == 0.5 and d["generator"]["noise"]["unseen"] == 0.0
    flat = config_mod.flat_hp(d)
    assert flat["began_gamma"] == 0.5 and flat["noise_train"] == 0.08 and flat["calibration"] == "max_h"


def test_a_record_of_the_untyped_format_still_reruns():
    """Records written before typed configs kept epochs in hp and noise as a bool: the rerun reads them."""
    from zsgm.pipelines.verbs.rerun import config_of

    old = {"id": "x-s0", "hp": {"hidden": 1024}, "config": {**RunConfig().to_dict(), "noise": True,
                                                             "hp": {"hidden": 1024, "epochs": 10, "eval_every": 5}}}
    cfg, pinned = config_of(old, None, None)
    assert (cfg.epochs, cfg.eval_every, cfg.hp, cfg.noise, pinned) == (10, 5, {"hidden": 1024}, "on", {})
    assert resolve(cfg).generator.epochs == 10
