"""zsgm: generalized zero-shot learning with generative models.

The installed package is ``zsgm`` alone; its rooms are the repository's top-level folders
(``zsgm.core`` ← ``core/``, ``zsgm.extract`` ← ``extract/``, ``zsgm.generate``, ``zsgm.evaluate``,
``zsgm.pipelines``, ``zsgm.bench``), mapped by ``pyproject.toml``. The public Python API
(``zsgm.load_featureset``, ``zsgm.run``, ``zsgm.Result``) is imported on first use, so that
``import zsgm`` stays cheap.
"""
__version__ = "0.1.0"

# Run from a source checkout without installing it (PYTHONPATH=<checkout>, as bench/gpu.sh does on a lent
# machine): the rooms are the checkout's top-level folders, so they are searched as this package's.
# An installed zsgm (editable or not) finds them by its own mapping and is left as it is.
import os as _os

_checkout = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
if _os.path.isfile(_os.path.join(_checkout, "pyproject.toml")) and _checkout not in __path__:
    __path__.append(_checkout)

__all__ = ["__version__", "load_featureset", "run", "Result", "RunConfig", "FeatureSet"]


def __getattr__(name: str):
    if name in ("load_featureset", "run", "Result", "RunConfig", "FeatureSet"):
        from zsgm import api

        return getattr(api, name)
    raise AttributeError(f"module 'zsgm' has no attribute {name!r}")
