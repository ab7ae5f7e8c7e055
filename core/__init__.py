"""The ground floor: helpers every room imports, one module per job and nothing else of zsgm's.

``errors`` (ZsgmError), ``files`` (atomic writes, hashes), ``project`` (project and data roots,
versions), ``device``, ``rng`` (seeding, RNG state), ``logs``, ``registry`` and ``training`` (Adam,
CUDA graphs, the minibatch trainer of the small networks). See ARCHITECTURE.md.
"""
