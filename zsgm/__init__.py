"""zsgm: generalized zero-shot learning with generative models.

The installed package is ``zsgm`` alone; its rooms are the repository's top-level folders
(``zsgm.core`` ← ``core/``, ``zsgm.extract`` ← ``extract/``, ``zsgm.generate``, ``zsgm.evaluate``,
``zsgm.pipelines``, ``zsgm.bench``), mapped by ``pyproject.toml``. The public Python API
(``zsgm.load_featureset``, ``zsgm.run``, ``zsgm.Result``) is imported on first use, so that
``import zsgm`` stays cheap.
"""
__version__ = "0.1.0"

__all__ = ["__version__", "load_featureset", "run", "Result", "RunConfig", "FeatureSet"]


def __getattr__(name: str):
    if name in ("load_featureset", "run", "Result", "RunConfig", "FeatureSet"):
        from zsgm import api

        return getattr(api, name)
    raise AttributeError(f"module 'zsgm' has no attribute {name!r}")
