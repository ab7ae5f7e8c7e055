"""The prototype classifier's real_mix: a second net on the real (seen-class) rows only, its
logits mixed in; 0 keeps the one-net classifier."""
import torch

from zsgm.evaluate.classifiers import build
from zsgm.pipelines.config import classifier_defaults


def _data(synthetic: bool):
    g = torch.Generator().manual_seed(0)
    att = torch.randn(6, 8, generator=g)
    seen = torch.tensor([True, True, True, True, False, False])
    classes = torch.arange(6) if synthetic else torch.arange(4)
    y = classes.repeat_interleave(20)
    x = att[y] @ torch.randn(8, 16, generator=g) + 0.1 * torch.randn(len(y), 16, generator=g)
    return x, y, att, seen


def _fit(mix: float, synthetic: bool = True):
    torch.manual_seed(0)
    x, y, att, seen = _data(synthetic)
    clf = build("prototype", classifier_defaults("prototype", **{"real_mix": mix, "min_steps": 20, "epochs": 2,
                                                              "hidden": 32}))
    return clf.fit(x, y, 6, att, seen), x


def test_real_mix_trains_a_real_only_net_and_mixes_its_logits():
    clf, x = _fit(0.5)
    assert clf.real_net is not None
    s = clf.scores(x)
    assert s.shape == (x.shape[0], 6) and torch.isfinite(s).all()
    expected = torch.log_softmax(0.5 * clf.net(x, clf.att) + 0.5 * clf.real_net(x, clf.att), dim=1)
    assert torch.allclose(s, expected)


def test_real_mix_zero_is_the_one_net_classifier():
    clf, x = _fit(0.0)
    assert clf.real_net is None
    assert torch.allclose(clf.scores(x), torch.log_softmax(clf.net(x, clf.att), dim=1))


def test_without_synthetic_rows_the_second_net_trains_on_the_same_rows():
    clf, x = _fit(0.5, synthetic=False)
    assert clf.real_net is not None  # every configuration gets the same two-net classifier


def _shifted_problem(seed: int, n_cls: int = 40, seen_n: int = 30, shift: float = 2.5):
    """Features = a linear map of the attributes + noise. The unseen classes' training rows stand for
    a weak generator's: each class's synthetic centre is displaced by a random shift."""
    g = torch.Generator().manual_seed(seed)
    a_dim, d = 16, 32
    att = torch.randn(n_cls, a_dim, generator=g)
    centres = att @ (torch.randn(a_dim, d, generator=g) / a_dim ** 0.5)

    def sample(classes: torch.Tensor, offset: torch.Tensor | float = 0.0) -> torch.Tensor:
        return centres[classes] + offset + 0.8 * torch.randn(len(classes), d, generator=g)

    y_seen = torch.arange(seen_n).repeat_interleave(30)
    y_unseen = torch.arange(seen_n, n_cls).repeat_interleave(30)
    off = (shift * torch.randn(n_cls - seen_n, d, generator=g)).repeat_interleave(30, 0)
    x = torch.cat([sample(y_seen), sample(y_unseen, off)])
    return x, torch.cat([y_seen, y_unseen]), att, torch.arange(n_cls) < seen_n, sample(y_unseen), y_unseen


def test_real_mix_recovers_unseen_classes_whose_synthetic_features_are_off():
    """Synthetic unseen features centred in the wrong place pull the one-net classifier's unseen
    prototypes with them; the real-only net still places them from the attributes, and the mix
    recognises more real unseen images (ZSL among the unseen classes; measured gains 7.7 / 9.3 /
    14.3 points for seeds 0-2)."""
    from zsgm.evaluate.metrics import mean_class_accuracy

    for seed in range(3):
        x, y, att, seen, x_test, y_test = _shifted_problem(seed)
        n_seen = int(seen.sum())
        acc = {}
        for mix in (0.0, 0.5):
            torch.manual_seed(0)
            clf = build("prototype", classifier_defaults("prototype", real_mix=mix, epochs=30, min_steps=300,
                                                         hidden=64, batch_size=128))
            clf.fit(x, y, len(att), att, seen)
            acc[mix] = mean_class_accuracy(clf.scores(x_test)[:, n_seen:].argmax(1) + n_seen, y_test)
        assert acc[0.5] >= acc[0.0] + 4, (seed, acc)
