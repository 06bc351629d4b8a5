"""Search settings, read from Django settings named SEARCH_* with defaults."""
from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

INDEX_DEFINITION_PATH = Path(__file__).with_name("index.json")

# OpenSearch index names must be lower case and must not start with "-", "_" or "+".
_PREFIX_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,80}$")


@dataclass(frozen=True)
class SearchConfig:
    """Connection, naming and tuning of the product search index."""

    url: str
    index_prefix: str = "commerce"
    # Timeout of a storefront search request; the API returns 503 after it.
    timeout_seconds: float = 2.0
    # Timeout of index writes, bulk requests and drift scans.
    write_timeout_seconds: float = 30.0
    # Retry-After of the 503, and how long a process skips OpenSearch after a failed search.
    retry_after_seconds: int = 5
    page_size: int = 24
    # Products per bulk request in reindex, drift repair and availability refresh.
    batch_size: int = 500

    @classmethod
    def from_settings(cls) -> SearchConfig:
        """Build the config from Django settings; raises ImproperlyConfigured naming each invalid value."""
        default = cls(url="")
        config = cls(
            url=settings.OPENSEARCH_URL,
            index_prefix=getattr(settings, "SEARCH_INDEX_PREFIX", default.index_prefix),
            timeout_seconds=float(getattr(settings, "SEARCH_TIMEOUT_SECONDS", default.timeout_seconds)),
            write_timeout_seconds=float(
                getattr(settings, "SEARCH_WRITE_TIMEOUT_SECONDS", default.write_timeout_seconds)
            ),
            retry_after_seconds=int(getattr(settings, "SEARCH_RETRY_AFTER_SECONDS", default.retry_after_seconds)),
            page_size=int(getattr(settings, "SEARCH_PAGE_SIZE", default.page_size)),
            batch_size=int(getattr(settings, "SEARCH_BATCH_SIZE", default.batch_size)),
        )
        config.validate()
        return config

    def validate(self) -> None:
        errors = []
        if not _PREFIX_PATTERN.match(self.index_prefix):
            errors.append(
                f"SEARCH_INDEX_PREFIX={self.index_prefix!r} is not a valid index name prefix; "
                "use lower-case letters, digits, '.', '_' or '-', starting with a letter or digit."
            )
        for name, value in (
            ("SEARCH_TIMEOUT_SECONDS", self.timeout_seconds),
            ("SEARCH_WRITE_TIMEOUT_SECONDS", self.write_timeout_seconds),
        ):
            if value <= 0:
                errors.append(f"{name}={value} must be greater than 0.")
        for name, value in (
            ("SEARCH_RETRY_AFTER_SECONDS", self.retry_after_seconds),
            ("SEARCH_PAGE_SIZE", self.page_size),
            ("SEARCH_BATCH_SIZE", self.batch_size),
        ):
            if value < 1:
                errors.append(f"{name}={value} must be at least 1.")
        if self.page_size > max_result_window():
            errors.append(f"SEARCH_PAGE_SIZE={self.page_size} must not exceed the index's max_result_window.")
        if errors:
            raise ImproperlyConfigured(" ".join(errors))

    @property
    def alias(self) -> str:
        """Alias that every search and every event write goes through."""
        return f"{self.index_prefix}-products"

    @property
    def index_pattern(self) -> str:
        """Pattern of the concrete indexes behind the alias, for cleanup."""
        return f"{self.alias}-*"

    def new_index_name(self) -> str:
        # The timestamp sorts indexes by age; the random part keeps two builds in one second apart.
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        return f"{self.alias}-{stamp}-{secrets.token_hex(3)}"


@cache
def index_definition() -> dict[str, Any]:
    """Return the settings and mappings of a product index, as stored in index.json."""
    with INDEX_DEFINITION_PATH.open(encoding="utf-8") as file:
        return json.load(file)


def max_result_window() -> int:
    """Return the deepest hit (from + size) the index serves, from index.json."""
    return int(index_definition()["settings"]["index"]["max_result_window"])
