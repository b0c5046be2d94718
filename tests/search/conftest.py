"""A small design problem the search tests share: one class, one model, a tiny chip space."""

from __future__ import annotations

import pytest
import yaml

SMALL = {
    "traffic": {"mix": {"chat": 1.0}},
    "models": ["llama-3.1-8b"],
    "assign": {},
    "demand_output_tokens_per_day": 2.0e10,
    "constraints": {"node": "n3", "power_w": 1500, "max_chiplets": 2, "budget_usd": None},
    "utilisation": 0.7,
    "template": "inference-hbm",
    "space": {"cores": [64, 128, 192], "clock_ghz": [1.4, 2.2], "memory": ["HBM3E:4x36", "HBM3E:8x36"],
              "sram_shared_mb": [128], "scaleup_links": [16], "scaleup_domain": [32], "scaleout_gbps": [400]},
    "deployment": {"tp": [1, 2], "pp": [1], "weight_precision": ["fp8"], "kv_precision": ["fp8"],
                   "max_batch": [64, 256], "chunk_tokens": [2048, 8192], "disaggregated": [False, True]},
}


@pytest.fixture(scope="session")
def small_spec():
    """SMALL for module-scoped fixtures (`from conftest import SMALL` would get whichever tests/*/conftest.py
    pytest imported last when several test folders run together)."""
    return yaml.safe_load(yaml.safe_dump(SMALL))


@pytest.fixture
def small_raw():
    return yaml.safe_load(yaml.safe_dump(SMALL))


@pytest.fixture
def small_file(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(SMALL))
    return path
