"""Test-wide settings: headless EGL rendering unless the caller chose a GL backend; and no silent
skips — a skipped test fails the session unless its reason says it needs CUDA (the only tests CI
may skip, on machines without a GPU)."""

import os

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")  # must precede the first `import mujoco`

_SKIPPED: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else ""
        if "cuda" not in reason.lower():
            _SKIPPED.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _SKIPPED and exitstatus == 0:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter) -> None:
    if _SKIPPED:
        terminalreporter.write_line(
            f"FAILED: {len(_SKIPPED)} test(s) skipped for a reason other than CUDA:", red=True)
        for s in _SKIPPED:
            terminalreporter.write_line(f"  {s}")


@pytest.fixture
def one_torch_thread():
    """One intra-op torch thread for the test (tiny networks and convolutions are faster on one
    thread than on two on a shared 2-core machine); the previous count is restored after."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
