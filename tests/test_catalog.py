"""The shipped catalogs cover what the issue asks for, and every figure carries a source."""

import json

import pytest
import yaml

from tokenfab import catalog
from tokenfab.hardware import all_chips, load_chip

REQUIRED_EXTRA = ("gb300", "rtx-pro-6000", "gaudi2", "mi210", "h20", "h800")
# China export Hopper parts used by the large-MoE measurements (DeepSeek on H800, Ant Group on H20)
EXPORT_HOPPER = ("h20", "h800")


def test_every_shared_accelerator_and_measured_id_is_in_the_catalog(calibration_rows):
    ids = set(catalog.accelerators())
    shipped = yaml.safe_load((catalog.DATA / "hardware.yaml").read_text())["accelerators"]
    assert {a["id"] for a in shipped} <= ids
    assert {r["hardware"] for r in calibration_rows} <= ids
    assert set(REQUIRED_EXTRA) <= ids


@pytest.mark.parametrize("hw_id", sorted(catalog.accelerators()))
def test_accelerator_records_have_sources_and_sane_units(hw_id):
    rec = catalog.accelerator(hw_id)
    assert rec["sources"], f"{hw_id} has no sources"
    assert all(isinstance(u, str) and u for u in rec["sources"].values())
    chip = load_chip(hw_id)
    assert chip.mem_bw > 0 and chip.mem_bytes > 0
    # a chip may lack dense figures only where the vendor publishes none (and the record says so)
    assert chip.peak_flops or "not published" in rec.get("sparsity", ""), f"{hw_id} has no compute figures"


def test_unknown_hardware_lists_allowed_ids():
    with pytest.raises(KeyError, match="allowed .*h100-sxm"):
        catalog.accelerator("h100-sxn")


def test_model_zoo_covers_measured_models(calibration_rows):
    required = {"gpt-j-6b", "llama-2-7b", "llama-2-70b", "llama-3.1-8b", "llama-3.1-70b", "llama-3.3-70b",
                "llama-3.1-405b", "mixtral-8x7b", "mixtral-8x22b", "falcon-180b", "gpt-3-175b", "deepseek-r1",
                "qwen3-235b-a22b", "gpt-oss-120b"}
    assert required <= set(catalog.model_ids())
    assert {r["model"] for r in calibration_rows if r["model"]} <= set(catalog.model_ids())
    for mid in catalog.model_ids():
        assert catalog.model_config(mid)["_source"].startswith("http")


def test_dataset_and_engine_presets_have_sources():
    for name, ds in catalog.datasets().items():
        assert ds["input_mean"] > 0 and ds["output_mean"] > 0, name
        assert ds.get("source") or ds.get("sources"), name
    for name, eng in catalog.engines().items():
        assert eng["sources"], name
        assert 0 < eng["kv_memory_fraction"] <= 1


def test_model_config_file_path(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps({"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2,
                                "num_attention_heads": 4, "intermediate_size": 128, "vocab_size": 100}))
    assert catalog.model_config(str(path))["hidden_size"] == 64
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        catalog.model_config(str(bad))


@pytest.mark.parametrize("hw_id", EXPORT_HOPPER)
def test_export_hopper_parts_load_in_the_hopper_family(hw_id):
    chip = load_chip(hw_id)
    assert chip.family == "nvidia-hopper"          # so the fitted Hopper efficiencies apply
    assert chip.peak_flops["fp8"] > 0 and chip.peak_flops["bf16"] > 0
    assert chip.scaleup_kind == "nvswitch" and chip.scaleup_domain == 8 and chip.scaleout_bw > 0
    assert chip.compute_units and chip.tdp_w
    assert chip.price_usd.low <= chip.price_usd.value <= chip.price_usd.high
    assert hw_id in {c.id for c in all_chips()}


def test_export_hopper_parts_keep_what_sets_them_apart():
    h100, h20, h800 = load_chip("h100-sxm"), load_chip("h20"), load_chip("h800")
    # H800: H100 silicon and tensor peaks, NVLink capped to 400 GB/s bidir
    assert h800.peak_flops["fp8"] == h100.peak_flops["fp8"] and h800.mem_bw == h100.mem_bw
    assert h800.scaleup_bw == pytest.approx(200e9) and h800.scaleout_bw == pytest.approx(400e9 / 8)
    # H20: ~15% of H100 compute, more and faster HBM, full NVLink
    assert h20.peak_flops["bf16"] < 0.2 * h100.peak_flops["bf16"]
    assert h20.mem_bw > h100.mem_bw and h20.mem_bytes > h100.mem_bytes and h20.scaleup_bw == h100.scaleup_bw


def test_mlperf_deepseek_r1_preset():
    ds = catalog.datasets()["mlperf-deepseek-r1"]
    assert ds["samples"] == 4388 and ds["output_max"] == 20000
    assert ds["input_low"] <= ds["input_mean"] <= ds["input_high"]
    assert ds["output_low"] <= ds["output_mean"] <= ds["output_high"]
    assert ds["output_low"] <= 3828 <= ds["output_high"]   # the HPE H200 v5.1 run (MLPERF_INF_V5.1_MOE-014)
    assert ds["output_mean"] > 4 * ds["input_mean"]       # reasoning: outputs dominate


# ---- power and price bases of the rivals, next-generation entries, the constants behind them ----------

RIVAL_IDS = ("tpu-v5e", "tpu-v5p", "tpu-v6e", "tpu-v7", "trainium2", "trainium3", "inferentia2", "mtia-v2", "maia-100")
NEXT_GEN = ("vr200", "mi455x")


@pytest.mark.parametrize("hw_id", RIVAL_IDS + NEXT_GEN)
def test_rivals_have_a_sourced_ranged_tdp(hw_id):
    rec = catalog.accelerator(hw_id)
    span = rec["tdp_range_w"]
    assert 0 < span["low"] <= rec["tdp_w"] <= span["high"], hw_id
    assert span["basis"] and rec["sources"]["tdp"].startswith("http")


@pytest.mark.parametrize("hw_id", RIVAL_IDS + NEXT_GEN)
def test_rivals_have_a_price_basis(hw_id):
    rec = catalog.accelerator(hw_id)
    price, cloud = rec["price_usd"], rec["cloud_usd_hr"]
    if price.get("value") is not None:                          # bought: a ranged price
        assert price["low"] <= price["value"] <= price["high"] and price["kind"]
    elif price.get("basis") == "internal-cost":                 # built in-house: a shipped reference design
        assert price["design"] in {p.stem for p in catalog.design_dir().iterdir()}
    else:                                                       # rented only: a rate and, where published, commitments
        assert cloud["low"] <= cloud["typical"] <= cloud["high"]
        if cloud.get("committed_3yr"):
            assert cloud["committed_3yr"] <= cloud["committed_1yr"] <= cloud["typical"]
        assert rec["sources"].get("cloud", "").startswith("http")


@pytest.mark.parametrize("hw_id", NEXT_GEN)
def test_next_generation_entries_have_ranges_and_a_date(hw_id):
    import re
    rec = catalog.accelerator(hw_id)
    assert re.fullmatch(r"20\d\d-(0[1-9]|1[0-2])", rec["availability"])
    assert rec["launch_year"] >= 2026 and "includes" in rec["price_usd"]
    for precision, (lo, hi) in rec["dense_tflops_range"].items():
        assert lo <= rec["dense_tflops"][precision] <= hi
    chip = load_chip(hw_id)
    assert chip.family != "other" and chip.energy is not None and chip.scaleup_domain == 72


@pytest.mark.parametrize("name", ["cloud_margin", "cloud_commit_discount_3yr", "hbm_price_usd_per_gb"])
def test_new_price_constants_have_sources_and_ranges(name):
    from tokenfab.constants import get, keys
    rec = catalog.constants()[name]
    assert rec["source"].startswith("http") and rec["note"]
    for key in keys(name) or (None,):
        u = get(name, key) if key else get(name)
        assert u.low < u.value < u.high, (name, key)


def test_hbm_price_follows_the_2025_supply_prices():
    from tokenfab.constants import get
    assert get("hbm_price_usd_per_gb", "HBM3E").value == pytest.approx(370 / 36, rel=0.01)   # $/stack / GB
    assert get("hbm_price_usd_per_gb", "HBM4").value == pytest.approx(560 / 36, rel=0.01)
    assert catalog.constants()["hbm_price_per_gb_usd"]["value"]["HBM3E"] == get("hbm_price_usd_per_gb", "HBM3E").value


def test_the_data_fingerprint_follows_every_shipped_file(tmp_path, monkeypatch):
    import shutil

    from tokenfab import catalog
    copy = tmp_path / "data"
    shutil.copytree(catalog.DATA, copy)
    monkeypatch.setattr(catalog, "DATA", copy)
    catalog.fingerprint.cache_clear()
    before = catalog.fingerprint()
    (copy / "calibration.json").write_text((copy / "calibration.json").read_text() + " ")
    catalog.fingerprint.cache_clear()
    after = catalog.fingerprint()
    catalog.fingerprint.cache_clear()
    assert before != after


TINY = {"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
        "intermediate_size": 128, "vocab_size": 100}


def test_a_model_folder_and_a_cached_hub_id_load(tmp_path, monkeypatch):
    from tokenfab.model import load_model
    folder = tmp_path / "Tiny-Llama"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(TINY))
    assert load_model(str(folder)).name == "Tiny-Llama"
    assert load_model(str(folder / "config.json")).name == "Tiny-Llama"
    # the hub cache's layout: models--org--name/refs/main names the snapshot
    repo = tmp_path / "hub" / "models--acme--Tiny-Llama"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc123")
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "snapshots" / "abc123" / "config.json").write_text(json.dumps({**TINY, "hidden_size": 128}))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    model = load_model("acme/Tiny-Llama")
    assert model.name == "Tiny-Llama" and model.hidden == 128


def test_a_model_that_is_nowhere_names_what_is_allowed(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(KeyError, match="Hugging Face id in the local cache"):
        catalog.model_config("acme/not-cached")
    with pytest.raises(KeyError, match="Hugging Face id in the local cache"):
        catalog.model_config(str(tmp_path))            # a folder without a config.json
    with pytest.raises(KeyError, match="not found"):
        catalog.model_config(str(tmp_path / "missing.json"))
