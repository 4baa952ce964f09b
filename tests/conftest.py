"""Shared pytest configuration for the tapbot test suite."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "playground: end-to-end tests that start the Microsoft 365 Agents Playground (Node; needs `npm ci`)",
    )
    config.addinivalue_line(
        "markers",
        "browser: end-to-end tests in Debian's Chromium driven by Playwright "
        "(needs /usr/bin/chromium: bash tools/install-browser.sh)",
    )
