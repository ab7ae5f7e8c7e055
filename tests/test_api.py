"""The public Python API: the README's example runs as written, and the installed package is `zsgm`
alone, so that a PyPI package named like one of its rooms (`evaluate`) is not shadowed."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from zsgm.core.project import PROJECT_ROOT


def readme_example() -> str:
    text = (PROJECT_ROOT / "README.md").read_text()
    section = text[text.index("## Python API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.mark.slow
def test_the_readme_example_runs_and_synthesises(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSGM_RESULTS", str(tmp_path / "results"))
    monkeypatch.chdir(PROJECT_ROOT)
    scope: dict = {}
    exec(compile(readme_example(), "README.md (Python API)", "exec"), scope)
    result, baseline = scope["result"], scope["baseline"]
    assert result.record["model"] == "cramer" and baseline.record["model"] == "ridge"
    assert 0 <= result.H <= 100 and result.per_class["unseen"]
    # the records went to the store $ZSGM_RESULTS names, the checkpoints were dropped as the CLI drops them
    assert (tmp_path / "results" / "runs.jsonl").is_file() and not list(result.run_dir.glob("*.pt"))
    x, _ = result.synthesize(n=3)  # default: the unseen classes, from their attributes alone
    assert x.shape[0] == 3 * len(result.problem.unseen) and x.std(0).mean() > 0


def test_run_checks_settings_as_the_cli_does(tmp_path):
    import zsgm
    from zsgm.core.errors import ZsgmError

    fs = zsgm.load_featureset(PROJECT_ROOT / "data" / "demo" / "cub20_lite0.safetensors")
    with pytest.raises(ZsgmError, match="n_synth"):
        zsgm.run(fs, model="cramer", hp={"n_synth": -1}, store=tmp_path / "r.jsonl", runs_dir=tmp_path / "runs")
    with pytest.raises(ZsgmError, match="unknown key"):
        zsgm.run(fs, modle="cramer", store=tmp_path / "r.jsonl")
    assert not (tmp_path / "r.jsonl").exists()


def test_one_namespace_beside_a_pypi_evaluate(tmp_path):
    """An `evaluate` package on the path (as PyPI's is) and zsgm import side by side."""
    fake = tmp_path / "site" / "evaluate"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("WHO = 'pypi evaluate'\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    code = ("import evaluate, zsgm, zsgm.evaluate.metrics; assert evaluate.WHO == 'pypi evaluate'; "
            "assert zsgm.evaluate.metrics.__name__ == 'zsgm.evaluate.metrics'; print(zsgm.__version__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    import zsgm

    assert out.stdout.strip() == zsgm.__version__


def test_top_level_is_zsgm_only():
    from importlib.metadata import distribution

    top = distribution("zsgm").read_text("top_level.txt")
    assert top is not None and top.split() == ["zsgm"]
