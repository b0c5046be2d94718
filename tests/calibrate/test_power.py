"""GPU power through NVML, without a GPU: a fake NVML module stands in for pynvml, so the integration, the
fallback from the energy counter to power samples and the no-NVML path are checked on any machine."""

import sys
import time

import pytest

from tokenfab.calibrate.power import (
    ENERGY_COUNTER,
    POWER_SAMPLES,
    UNAVAILABLE,
    PowerMeter,
    PowerUnavailable,
    integrate,
    load_nvml,
)


class FakeNVML:
    """pynvml's surface as the meter uses it: a board drawing `watts`, its energy counter in mJ since start."""

    NVML_CLOCK_SM, NVML_CLOCK_MEM = 1, 2

    class NVMLError(Exception):
        pass

    def __init__(self, watts=300.0, counter=True, counter_stuck=False, init_fails=False):
        self.watts, self.counter, self.counter_stuck, self.init_fails = watts, counter, counter_stuck, init_fails
        self.t0 = time.perf_counter()
        self.shutdown = False

    def nvmlInit(self):
        if self.init_fails:
            raise self.NVMLError("Driver Not Loaded")

    def nvmlShutdown(self):
        self.shutdown = True

    def nvmlDeviceGetHandleByIndex(self, index):
        return ("gpu", index)

    def nvmlDeviceGetHandleByUUID(self, uuid):
        raise self.NVMLError("Not Found")

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        if not self.counter:
            raise self.NVMLError("Not Supported")
        return 123_000 if self.counter_stuck else 123_000 + int((time.perf_counter() - self.t0) * self.watts * 1e3)

    def nvmlDeviceGetPowerUsage(self, handle):
        return int(self.watts * 1e3)

    def nvmlDeviceGetClockInfo(self, handle, kind):
        return {1: 1980, 2: 2619}[kind]

    def nvmlDeviceGetEnforcedPowerLimit(self, handle):
        return 700_000

    def nvmlDeviceGetName(self, handle):
        return b"NVIDIA H100 80GB HBM3"

    def nvmlSystemGetDriverVersion(self):
        return "550.54.15"


def busy(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        time.sleep(0.002)


def test_trapezoid_integration():
    assert integrate([]) == (0.0, 0.0)
    assert integrate([(5.0, 250.0)]) == (0.0, 250.0)
    joules, watts = integrate([(0.0, 100.0), (1.0, 300.0), (3.0, 300.0)])
    assert joules == pytest.approx(200.0 + 600.0) and watts == pytest.approx(800.0 / 3)


def test_energy_counter_gives_power_and_joules_per_step():
    meter = PowerMeter(nvml=FakeNVML(watts=250.0), interval_s=0.01)
    assert meter.available and meter.method == ENERGY_COUNTER
    with meter.measure() as reading:
        busy(0.2)
        reading.steps = 40
    assert reading.method == ENERGY_COUNTER and reading.seconds >= 0.2
    assert reading.avg_power_w == pytest.approx(250.0, rel=0.05)
    assert reading.joules_per_step == pytest.approx(reading.joules / 40)
    assert reading.samples >= 3 and reading.sampled_power_w == pytest.approx(250.0)
    assert (reading.sm_clock_mhz, reading.mem_clock_mhz) == (1980, 2619)
    info = meter.info()
    assert info["power_limit_w"] == 700.0 and info["nvml_name"].startswith("NVIDIA H100") and info["energy_counter"]
    meter.close()
    assert not meter.available


def test_falls_back_to_samples_without_a_counter():
    meter = PowerMeter(nvml=FakeNVML(watts=410.0, counter=False), interval_s=0.01)
    assert meter.method == POWER_SAMPLES
    reading = meter.run(lambda: busy(0.01), seconds=0.1, step_s=0.01, sync=lambda: None)
    assert reading.method == POWER_SAMPLES and reading.steps == 10 and reading.samples >= 2
    assert reading.avg_power_w == pytest.approx(410.0)
    assert reading.joules == pytest.approx(410.0 * reading.seconds)
    assert reading.joules_per_step == pytest.approx(reading.joules / 10)


def test_falls_back_to_samples_when_the_counter_stalls():
    meter = PowerMeter(nvml=FakeNVML(watts=180.0, counter_stuck=True), interval_s=0.01)
    assert meter.method == ENERGY_COUNTER
    reading = meter.idle(0.1)
    assert reading.method == POWER_SAMPLES and "not advancing" in reading.reason
    assert reading.avg_power_w == pytest.approx(180.0) and reading.joules_per_step is None


def test_without_nvml_every_reading_is_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)   # import pynvml now raises ImportError
    with pytest.raises(PowerUnavailable, match="nvidia-ml-py"):
        load_nvml()
    meter = PowerMeter()
    assert not meter.available and meter.method == UNAVAILABLE and "pynvml" in meter.reason
    with meter.measure(steps=5) as reading:
        pass
    assert reading.method == UNAVAILABLE and reading.avg_power_w is None and "pynvml" in reading.reason
    assert meter.run(lambda: None, 0.01, 0.001, lambda: None).method == UNAVAILABLE
    assert meter.info()["method"] == UNAVAILABLE and meter.power_limit_w() is None


def test_nvml_that_fails_to_start_is_unavailable():
    meter = PowerMeter(nvml=FakeNVML(init_fails=True))
    assert meter.method == UNAVAILABLE and "Driver Not Loaded" in meter.reason
    assert meter.idle(0.0).method == UNAVAILABLE


def test_uuid_lookup_falls_back_to_the_index():
    meter = PowerMeter(nvml=FakeNVML(), index=0, uuid="1234-abcd")
    assert meter.handle == ("gpu", 0)
