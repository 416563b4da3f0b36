"""Asking for a device this machine lacks: one line naming why and what is available, in every command taking --device."""
from __future__ import annotations

import pytest
import torch

from nestedae_core.cli import main
from nestedae_core.errors import InputError
from nestedae_core.model import devices
from nestedae_core.model.devices import available_devices, resolve_device

pytestmark = pytest.mark.unit


@pytest.fixture
def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without CUDA or MPS, whatever this one has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.mark.parametrize("name", ["cuda", "cuda:0", "CUDA:1", "mps", "gpu"])
def test_an_absent_device_names_what_is_available(no_cuda: None, name: str) -> None:
    with pytest.raises(InputError) as err:
        resolve_device(name)
    msg = str(err.value)
    assert "\n" not in msg
    assert f"device '{name.lower()}' is not available on this machine" in msg
    assert msg.endswith("available: cpu (or 'auto')")
    if name == "gpu":
        assert "known names: auto, cpu, cuda, cuda:N, mps" in msg


def test_why_cuda_is_absent(no_cuda: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(InputError, match="CPU-only build; install a CUDA build of torch"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    with pytest.raises(InputError, match="no CUDA GPU is visible"):
        resolve_device("cuda")


def test_mps_is_listed_when_present(no_cuda: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert [n for n, _ in available_devices()] == ["mps", "cpu"]
    with pytest.raises(InputError, match=r"available: mps, cpu \(or 'auto'\)"):
        resolve_device("cuda")
    assert resolve_device("auto") == torch.device("mps")


def test_auto_and_cpu_resolve(no_cuda: None) -> None:
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert devices.resolve_device("") == torch.device("cpu")


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--preset", "synthetic", "--epochs", "1", "--device", "cuda", "--out", "{tmp}/m"],
        ["benchmark", "accuracy", "--task", "bandgap-paper", "--device", "cuda"],
        ["benchmark", "calibration", "--device", "cuda", "--json", "{tmp}/c.json"],
        ["benchmark", "speed", "--device", "cuda"],
    ],
)
def test_every_command_with_device_refuses_an_absent_one_in_one_line(no_cuda: None, argv: list[str], tmp_path, capsys) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse: a bad option value
        rc = exc.code
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "device 'cuda' is not available on this machine" in err and "available: cpu" in err
    assert not (tmp_path / "m").exists()
