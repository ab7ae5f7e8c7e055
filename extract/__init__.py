"""Ground floor of zsgm: datasets, the FeatureSet cache, backbones and extraction.

Also home of the small shared helpers that every stage may import, one module per job:
``errors`` (ZsgmError), ``files`` (atomic writes, hashes), ``project`` (project and data roots,
versions), ``device``, ``rng`` (seeding, RNG state), ``logs``, ``registry`` and ``training``
(Adam, CUDA graphs, the minibatch trainer). See ARCHITECTURE.md.
"""
__version__ = "0.1.0"
