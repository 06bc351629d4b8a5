"""Fixtures shared by the whole suite; every test runs against the real native stack."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()
