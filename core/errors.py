"""The error a user can act on: bad input or usage, shown as its message alone (exit 2)."""
from __future__ import annotations

import difflib
from typing import Iterable


class ZsgmError(Exception):
    """Bad input or usage. The CLI prints the message alone and exits with code 2."""


def unknown_name_error(kind: str, name: str, known: Iterable[str]) -> ZsgmError:
    """An error for an unknown registry name, listing the known ones and the closest match."""
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=8)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    if len(known) > 30:  # e.g. timm's models: the closest ones, not a page of names
        return ZsgmError(f"unknown {kind} '{name}'.{hint} Closest known: "
                         f"{', '.join(close) or ', '.join(known[:8])} (of {len(known)})")
    return ZsgmError(f"unknown {kind} '{name}'.{hint} Known: {', '.join(known)}")
