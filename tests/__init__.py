"""The test suite; it mirrors the source tree. Helpers live in ``tests.helpers``."""
