"""Suite-wide settings: deterministic, single-threaded torch (CI has 2 cores), no display."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    try:
        import torch
    except ImportError:
        yield
        return
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield


@pytest.fixture(autouse=True)
def _keep_locale():
    """VTK/MRML code may switch the C locale to "C" (plain ASCII) while a test runs; a test after it
    would then read UTF-8 text with the wrong codec. Each test gets the locale it started with."""
    import locale

    before = locale.setlocale(locale.LC_ALL)
    yield
    if locale.setlocale(locale.LC_ALL) != before:
        locale.setlocale(locale.LC_ALL, before)
