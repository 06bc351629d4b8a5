"""Random object ids in the provider's ``<prefix>_<24 base62 characters>`` form."""
from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str) -> str:
    # Ids come from `secrets`, not the seeded generator, so that a restarted
    # simulator with the same --seed never reissues an id that a client stored.
    return f"{prefix}_{''.join(secrets.choice(_ALPHABET) for _ in range(24))}"
