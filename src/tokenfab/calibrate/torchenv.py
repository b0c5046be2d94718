"""The PyTorch side of device calibration: opening a device, timing a callable, describing the stack.

torch is imported here lazily (and in the benchmark modules that take a `TorchDevice`), so the rest of
tokenfab never needs it. Timing follows one rule everywhere: warm up, then the median of repeats, each
repeat long enough to swamp the timer (CUDA events on a GPU; on a CPU the calling thread's CPU time when
torch runs on one thread, else `perf_counter`).
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

DEVICES = ("cpu", "cuda")


class DeviceError(RuntimeError):
    """The requested device cannot be calibrated here; the message is the one-line reason."""


def import_torch() -> Any:
    try:
        import torch
    except ImportError:
        raise DeviceError("device calibration needs PyTorch: pip install 'tokenfab[gpu]'") from None
    return torch


@dataclass
class TorchDevice:
    """An opened device: the torch module, the device and a timer bound to it."""

    torch: Any
    kind: str            # "cpu" or "cuda"
    device: Any          # torch.device
    threads: int         # CPU threads torch uses (intra-op)

    @property
    def is_cuda(self) -> bool:
        return self.kind == "cuda"

    def sync(self) -> None:
        if self.is_cuda:
            self.torch.cuda.synchronize(self.device)

    def randn(self, *shape: int, dtype: Any = None, scale: float = 1.0) -> Any:
        """Random normal tensor: never all zeros (zeros would let kernels or sparsity shortcut the work)."""
        t = self.torch.randn(*shape, device=self.device, dtype=self.torch.float32 if dtype is None else dtype)
        return t.mul_(scale) if scale != 1.0 else t

    def time(self, fn: Callable[[], Any], warmup: int = 2, repeats: int = 5, min_repeat_s: float = 0.01,
             max_inner: int = 200) -> float:
        """Median seconds per call of `fn` over `repeats` timed runs, after `warmup` untimed calls.

        Each repeat calls `fn` `inner` times back to back, `inner` chosen from one probe call so a repeat
        lasts about `min_repeat_s`: tiny kernels are then timed in a stream, not one launch at a time."""
        for _ in range(warmup):
            fn()
        self.sync()
        probe = self._run(fn, 1)
        inner = int(min(max_inner, max(1, min_repeat_s / max(probe, 1e-9))))
        return statistics.median(self._run(fn, inner) for _ in range(repeats))

    def time_many(self, fns: list[Callable[[], Any]], warmup: int = 2, repeats: int = 7,
                  min_repeat_s: float = 0.01, max_inner: int = 200) -> list[float]:
        """`time` for several callables at once, taking the repeats in rounds over all of them: a burst
        of load from elsewhere on a shared machine then lands on one round, which the median drops,
        instead of on every repeat of one unlucky point."""
        inners = []
        for fn in fns:
            for _ in range(warmup):
                fn()
            self.sync()
            inners.append(int(min(max_inner, max(1, min_repeat_s / max(self._run(fn, 1), 1e-9)))))
        samples: list[list[float]] = [[] for _ in fns]
        for _ in range(repeats):
            for fn, inner, out in zip(fns, inners, samples, strict=True):
                out.append(self._run(fn, inner))
        return [statistics.median(s) for s in samples]

    def _run(self, fn: Callable[[], Any], inner: int) -> float:
        if self.is_cuda:
            start = self.torch.cuda.Event(enable_timing=True)
            end = self.torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(inner):
                fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3 / inner
        clock = self.cpu_clock
        t0 = clock()
        for _ in range(inner):
            fn()
        return (clock() - t0) / inner

    @property
    def cpu_clock(self) -> Callable[[], float]:
        """On one thread, the thread's own CPU time: what the step costs, even while other processes
        share the cores (wall time there measures the neighbours too). Wall time with several threads."""
        return time.thread_time if self.threads == 1 else time.perf_counter


def open_device(kind: str, threads: int | None = None, seed: int = 0) -> TorchDevice:
    """Open `cpu` or `cuda` (raises `DeviceError` with the reason when it cannot be used)."""
    if kind not in DEVICES:
        raise DeviceError(f"--device {kind!r}: allowed {', '.join(DEVICES)}")
    torch = import_torch()
    if kind == "cuda":
        if not torch.cuda.is_available():
            build = torch.version.cuda or torch.version.hip
            why = "no GPU visible" if build else f"torch {torch.__version__} was built without CUDA"
            raise DeviceError(f"--device cuda: no CUDA device available to PyTorch ({why}); use --device cpu")
        device = torch.device("cuda", torch.cuda.current_device())
        torch.backends.cuda.matmul.allow_tf32 = True
    else:
        device = torch.device("cpu")
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    return TorchDevice(torch, kind, device, torch.get_num_threads())


def _driver_version() -> str | None:
    try:
        proc = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=20, check=True)
        return proc.stdout.strip().splitlines()[0] or None
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def describe(dev: TorchDevice) -> dict[str, Any]:
    """Provenance of a measurement: device name, driver and library versions, host, date."""
    torch = dev.torch
    info: dict[str, Any] = {
        "device": dev.kind,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "host_cpu": cpu_name(),
        "threads": dev.threads,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),  # noqa: UP017 - GPU hosts may run 3.10
    }
    if dev.is_cuda:
        props = torch.cuda.get_device_properties(dev.device)
        info.update({
            "gpu_name": torch.cuda.get_device_name(dev.device),
            "gpu_memory_bytes": int(props.total_memory),
            "gpu_sm_count": int(props.multi_processor_count),
            "compute_capability": f"{props.major}.{props.minor}",
            "driver": _driver_version(),
            "cuda": torch.version.cuda,
            "hip": getattr(torch.version, "hip", None),
            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        })
    else:
        info["cpu_name"] = cpu_name()
        info["timer"] = "thread CPU time" if dev.cpu_clock is time.thread_time else "wall time"
        info["cpu_count"] = os.cpu_count()
    return info
