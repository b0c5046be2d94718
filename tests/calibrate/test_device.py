"""Which chip a calibrated device is: GPU names to catalog ids, and a CPU's measured record."""

import pytest

from tokenfab.calibrate.device import hardware_for_gpu, measured_cpu_record
from tokenfab.hardware import chip_from_record, load_chip


@pytest.mark.parametrize("name, hw", [
    ("NVIDIA H100 80GB HBM3", "h100-sxm"),
    ("NVIDIA H100 PCIe", "h100-pcie"),
    ("NVIDIA H100 NVL", "h100-nvl"),
    ("NVIDIA H200", "h200"),
    ("NVIDIA H200 NVL", "h200-nvl"),
    ("NVIDIA GH200 480GB", "gh200"),
    ("NVIDIA A100-SXM4-80GB", "a100-sxm"),
    ("NVIDIA A100-PCIE-40GB", "a100-pcie"),
    ("NVIDIA B200", "b200"),
    ("NVIDIA GB200", "gb200"),
    ("AMD Instinct MI300X", "mi300x"),
])
def test_gpu_names_map_to_catalog_ids(name, hw):
    assert hardware_for_gpu(name) == hw
    load_chip(hw)  # every id the map can return is in the catalog


def test_unknown_gpu_names_the_way_out():
    with pytest.raises(KeyError, match="--hardware"):
        hardware_for_gpu("NVIDIA GeForce GTX 1080")
    assert hardware_for_gpu("NVIDIA GeForce GTX 1080", override="l40s") == "l40s"
    with pytest.raises(KeyError, match="allowed"):
        hardware_for_gpu("NVIDIA H100 80GB HBM3", override="h1000")


def test_measured_cpu_record_is_a_chip_labelled_as_measured():
    rec = measured_cpu_record("Some CPU", 1, {"bf16": 2e11}, 2.5e10, 16 * 2**30, "2026-01-01")
    chip = chip_from_record(rec)
    assert chip.id == "cpu" and chip.family == "cpu"
    assert chip.peak("bf16") == pytest.approx(2e11) and chip.mem_bw == pytest.approx(2.5e10)
    assert "measured" in chip.name and all("measured" in s or "operating system" in s for s in chip.sources.values())


def test_tokenfab_does_not_need_torch():
    import subprocess
    import sys
    code = ("import sys; import tokenfab.cli, tokenfab.calibrate, tokenfab.calibrate.runner, "
            "tokenfab.calibrate.holdout, tokenfab.validate; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
