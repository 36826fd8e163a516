"""Fixtures of the conversion tests (the nnU-Net folder fixture ``nnunet_env`` comes from tests/conftest.py)."""

from __future__ import annotations

import pytest
from conversion_fixtures import CaseBank


@pytest.fixture(scope="session")
def synthetic_cases() -> CaseBank:
    """One memoised bank of cropped generator cases for the whole session (read-only by convention)."""
    return CaseBank()
