"""The speed benchmark (``zsgm bench``, ``make bench``): the engine against the field's loop, extraction
against the bare forward pass, the demo's wall time. Results go to ``bench/results/``."""
