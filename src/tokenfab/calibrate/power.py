"""GPU power around timed steps, read through NVML (`pynvml`, package nvidia-ml-py, imported lazily).

Energy comes from the board's cumulative energy counter (`nvmlDeviceGetTotalEnergyConsumption`, mJ, Volta and
later) where the driver has it: exact over any window longer than its update interval. Power samples
(`nvmlDeviceGetPowerUsage`, mW), taken by a background thread every ~15 ms and integrated by the trapezoid rule,
run in every window too, so a driver without the counter, or a counter that did not advance, still gives an
answer (on Ampere and later that figure is itself a ~1 s running average: fine for windows of a second or more).
SM and memory clocks are sampled alongside.

Without NVML (a CPU machine, no driver, no package) nothing raises into the benchmark: every reading has method
"unavailable" and a one-line reason.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from typing import Any

ENERGY_COUNTER = "energy_counter"
POWER_SAMPLES = "power_samples"
UNAVAILABLE = "unavailable"


class PowerUnavailable(RuntimeError):
    """NVML cannot be used here; the message is the one-line reason."""


@dataclass
class PowerReading:
    """Energy over one window of work (`steps` steps of one benchmark point, or an idle wait)."""

    method: str                          # energy_counter, power_samples or unavailable
    seconds: float = 0.0
    joules: float | None = None
    avg_power_w: float | None = None
    steps: int = 0
    joules_per_step: float | None = None
    samples: int = 0                     # power samples taken (a cross-check when the counter was used)
    sampled_power_w: float | None = None
    sm_clock_mhz: float | None = None    # medians over the samples
    mem_clock_mhz: float | None = None
    reason: str | None = None            # why the method is unavailable, or why the counter was not used

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def integrate(samples: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """(joules, average watts) of (seconds, watts) samples by the trapezoid rule. One sample: its power, 0 J
    (no interval to integrate over); none: (0, 0)."""
    if not samples:
        return 0.0, 0.0
    if len(samples) == 1:
        return 0.0, float(samples[0][1])
    joules = sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in zip(samples, samples[1:], strict=False))
    span = samples[-1][0] - samples[0][0]
    return joules, joules / span if span > 0 else statistics.fmean(p for _t, p in samples)


def load_nvml() -> Any:
    """The `pynvml` module (raises `PowerUnavailable` when the package is not installed)."""
    try:
        import pynvml
    except ImportError:
        raise PowerUnavailable("no NVML: the pynvml module (pip install nvidia-ml-py) is not installed") from None
    return pynvml


class _Sampler(threading.Thread):
    """Polls power and clocks until stopped; one sample at start and one at stop, so short windows have two."""

    def __init__(self, meter: PowerMeter, interval_s: float) -> None:
        super().__init__(daemon=True)
        self.meter, self.interval_s = meter, interval_s
        self.power: list[tuple[float, float]] = []
        self.sm: list[float] = []
        self.mem: list[float] = []
        self._stop_event = threading.Event()

    def sample(self) -> None:
        watts = self.meter.power_w()
        if watts is not None:
            self.power.append((self.meter.clock(), watts))
        sm, mem = self.meter.clocks_mhz()
        if sm is not None:
            self.sm.append(sm)
        if mem is not None:
            self.mem.append(mem)

    def run(self) -> None:
        while not self._stop_event.wait(self.interval_s):
            self.sample()

    def stop(self) -> None:
        self._stop_event.set()
        self.join()
        self.sample()


class PowerMeter:
    """One GPU's power through NVML. `nvml` may be any object with pynvml's functions (tests inject a fake);
    None imports pynvml. The GPU is found by `uuid` (as torch reports it) when given, else by NVML `index`."""

    def __init__(self, nvml: Any = None, index: int = 0, uuid: str | None = None, interval_s: float = 0.015,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.interval_s, self.clock = interval_s, clock
        self.nvml: Any = None
        self.handle: Any = None
        self.reason: str | None = None
        self.counter = False
        try:
            nvml = nvml if nvml is not None else load_nvml()
            nvml.nvmlInit()
        except PowerUnavailable as err:
            self.reason = str(err)
            return
        except Exception as err:   # NVMLError (no driver, no GPU) or anything else: never into the benchmark
            self.reason = f"no NVML: nvmlInit failed ({type(err).__name__}: {err})"
            return
        self.nvml = nvml
        try:
            self.handle = self._handle(index, uuid)
        except Exception as err:
            self.reason = f"no NVML device {uuid or index} ({type(err).__name__}: {err})"
            self.close()
            return
        self.counter = self.energy_mj() is not None

    def _handle(self, index: int, uuid: str | None) -> Any:
        if uuid:
            try:
                return self.nvml.nvmlDeviceGetHandleByUUID(uuid if uuid.startswith(("GPU-", "MIG-")) else f"GPU-{uuid}")
            except Exception:   # an older driver or another UUID format: fall back to the index
                pass
        return self.nvml.nvmlDeviceGetHandleByIndex(index)

    @property
    def available(self) -> bool:
        return self.handle is not None

    @property
    def method(self) -> str:
        return UNAVAILABLE if not self.available else ENERGY_COUNTER if self.counter else POWER_SAMPLES

    # ----- single NVML reads: None where the call is not supported -----
    def _call(self, name: str, *args: Any) -> Any:
        if not self.available:
            return None
        try:
            return getattr(self.nvml, name)(self.handle, *args)
        except Exception:
            return None

    def energy_mj(self) -> float | None:
        value = self._call("nvmlDeviceGetTotalEnergyConsumption")
        return None if value is None else float(value)

    def power_w(self) -> float | None:
        value = self._call("nvmlDeviceGetPowerUsage")
        return None if value is None else float(value) / 1e3

    def clocks_mhz(self) -> tuple[float | None, float | None]:
        out = []
        for kind in ("NVML_CLOCK_SM", "NVML_CLOCK_MEM"):
            value = self._call("nvmlDeviceGetClockInfo", getattr(self.nvml, kind, None))
            out.append(None if value is None else float(value))
        return out[0], out[1]

    def power_limit_w(self) -> float | None:
        value = self._call("nvmlDeviceGetEnforcedPowerLimit")
        return None if value is None else float(value) / 1e3

    # ----- windows -----
    @contextmanager
    def measure(self, steps: int = 0) -> Iterator[PowerReading]:
        """Energy of the work done inside the block. The caller synchronises the device before leaving it,
        and may set `reading.steps` inside; the reading is filled in when the block ends."""
        reading = PowerReading(UNAVAILABLE if not self.available else self.method, steps=steps, reason=self.reason)
        if not self.available:
            yield reading
            return
        sampler = _Sampler(self, self.interval_s)
        e0 = self.energy_mj() if self.counter else None
        t0 = self.clock()
        sampler.sample()
        sampler.start()
        try:
            yield reading
        finally:
            sampler.stop()
            t1 = self.clock()
            e1 = self.energy_mj() if self.counter else None
            self._fill(reading, t1 - t0, e0, e1, sampler)

    def _fill(self, r: PowerReading, seconds: float, e0: float | None, e1: float | None, s: _Sampler) -> None:
        r.seconds = seconds
        r.samples = len(s.power)
        if s.power:
            r.sampled_power_w = integrate(s.power)[1]
        r.sm_clock_mhz = statistics.median(s.sm) if s.sm else None
        r.mem_clock_mhz = statistics.median(s.mem) if s.mem else None
        if e0 is not None and e1 is not None and e1 > e0 and seconds > 0:
            r.method, r.joules = ENERGY_COUNTER, (e1 - e0) / 1e3
            r.avg_power_w = r.joules / seconds
        elif r.sampled_power_w is not None:
            if self.counter:
                r.reason = "energy counter unreadable or not advancing over the window: power samples used"
            r.method, r.avg_power_w = POWER_SAMPLES, r.sampled_power_w
            r.joules = r.avg_power_w * seconds
        else:
            r.method, r.reason = UNAVAILABLE, "NVML gave neither energy nor power for this window"
        if r.joules is not None and r.steps > 0:
            r.joules_per_step = r.joules / r.steps

    def run(self, fn: Callable[[], Any], seconds: float, step_s: float, sync: Callable[[], None]) -> PowerReading:
        """Run `fn` back to back for about `seconds` (from its known time per call `step_s`) inside a window."""
        n = max(1, int(seconds / max(step_s, 1e-9)))
        with self.measure(steps=n) as reading:
            for _ in range(n):
                fn()
            sync()
        return reading

    def idle(self, seconds: float = 1.0) -> PowerReading:
        """Power with nothing running (the caller leaves the GPU idle)."""
        with self.measure() as reading:
            time.sleep(seconds)
        return reading

    def info(self) -> dict[str, Any]:
        """What the meter can do, and the board's power limit."""
        out: dict[str, Any] = {"method": self.method, "reason": self.reason, "energy_counter": self.counter,
                               "sample_interval_s": self.interval_s}
        if self.available:
            out["power_limit_w"] = self.power_limit_w()
            name = self._call("nvmlDeviceGetName")
            out["nvml_name"] = name.decode() if isinstance(name, bytes) else name
            try:
                driver = self.nvml.nvmlSystemGetDriverVersion()
                out["driver"] = driver.decode() if isinstance(driver, bytes) else driver
            except Exception:
                out["driver"] = None
        return out

    def close(self) -> None:
        if self.nvml is not None:
            with suppress(Exception):
                self.nvml.nvmlShutdown()
        self.nvml, self.handle = None, None
