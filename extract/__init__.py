"""Extraction and datasets: dataset specs, the xlsa17 reader, raw-image layouts, backbones over timm,
weight resolution, from-scratch training on the seen classes, batched extraction and the FeatureSet
cache. The helpers every room shares live in ``zsgm.core`` (ARCHITECTURE.md)."""
from zsgm.extract import xlsa17  # noqa: E402,F401  (registers the .mat reader of FeatureSet.load)
