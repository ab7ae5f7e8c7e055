"""Generative models that synthesise features of unseen classes from class semantics,
and the one engine that trains them all."""
