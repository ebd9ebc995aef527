from __future__ import annotations

import pytest

from service.settings import AppSettings
from tests.helpers.webhooks import quick


@pytest.fixture
def local(settings: AppSettings) -> AppSettings:
    """The empty test city, webhooks to 127.0.0.1 allowed."""
    return quick(settings)
