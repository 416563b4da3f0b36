"""CPU thread limits apply to the calling thread and are restored afterwards."""
from __future__ import annotations

import threading

import pytest
import torch

from nestedae_core.threads import limit_cpu_threads

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def two_threads() -> object:
    """Start from two threads (the suite itself runs on one, tests/conftest.py), so that a limit of 1 and its restoring show."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_a_worker_limit_does_not_change_other_threads() -> None:
    original = torch.get_num_threads()
    assert original == 2
    seen: list[tuple[int, int]] = []
    inside = threading.Event()
    release = threading.Event()

    def worker() -> None:
        before = torch.get_num_threads()
        with limit_cpu_threads(1):
            seen.append((before, torch.get_num_threads()))
            inside.set()
            release.wait(5)
        seen.append((before, torch.get_num_threads()))

    t = threading.Thread(target=worker)
    t.start()
    assert inside.wait(5)
    assert torch.get_num_threads() == original  # the main thread keeps its count
    release.set()
    t.join(5)
    assert seen[0][1] == 1
    assert seen[1][1] == seen[0][0]  # restored in the worker


def test_limit_and_restore_in_the_same_thread() -> None:
    before = torch.get_num_threads()
    assert before == 2
    with limit_cpu_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with limit_cpu_threads(None):
        assert torch.get_num_threads() == before
    with pytest.raises(ValueError):
        with limit_cpu_threads(0):
            pass


def test_torch_alone_limits_torch_and_leaves_the_other_pools() -> None:
    """``other_pools=False`` sets torch's count (restored afterwards) and never calls threadpoolctl."""
    from unittest import mock

    import threadpoolctl

    with mock.patch.object(threadpoolctl, "threadpool_limits", side_effect=AssertionError("threadpoolctl called")):
        with limit_cpu_threads(1, other_pools=False):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with pytest.raises(AssertionError, match="threadpoolctl called"):
            with limit_cpu_threads(1):
                pass
    assert torch.get_num_threads() == 2
