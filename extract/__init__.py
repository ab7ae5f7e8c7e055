"""Ground floor of zsgm: datasets, the FeatureSet cache, backbones and extraction.

Also home of the small shared helpers (``extract.common``) that every stage may import.
"""
__version__ = "0.1.0"
