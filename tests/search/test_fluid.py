"""The analytic screen: monotone in the right directions and close to the simulator where it matters."""

import numpy as np

from tokenfab.deployment import Deployment
from tokenfab.hardware import load_chip
from tokenfab.model import load_model
from tokenfab.perf.params import shipped_calibration
from tokenfab.search.fluid import Mix, screen_layout
from tokenfab.search.problem import ClassStats

CHIP = load_chip("h100-sxm")
MODEL = load_model("llama-3.1-8b")
PARAMS = shipped_calibration().for_chip(CHIP)
DEP = Deployment(tp=1, weight_precision="fp8", act_precision="fp8", kv_precision="fp8")


def cls(tpot=0.05, ttft=1.0, isl=1000.0, osl=200.0):
    return ClassStats("c", "m", 1.0, isl, osl, isl * 3, isl * isl * 2, osl / 3, ttft, tpot, 99.0)


def run(c, bl=(64, 256), ch=(2048, 8192)):
    return screen_layout(MODEL, CHIP, DEP, PARAMS, Mix.of([c]), np.array(bl, float), np.array(ch, float))


def test_looser_tpot_slo_never_lowers_capacity():
    tight, loose = run(cls(tpot=0.02)), run(cls(tpot=0.08))
    assert (loose.tokens_per_s >= tight.tokens_per_s - 1e-9).all()
    assert loose.tokens_per_s[..., 0].max() > tight.tokens_per_s[..., 0].max()


def test_higher_batch_limit_never_lowers_capacity():
    r = run(cls())
    assert (r.tokens_per_s[1] >= r.tokens_per_s[0] - 1e-9).all()
    assert (r.batch[0] <= 64).all()


def test_impossible_slo_names_the_binding_check():
    r = run(cls(tpot=1e-4))
    assert (r.tokens_per_s == 0).all()
    assert set(np.unique(r.reason)) <= {2}   # tpot_slo binds everywhere
    r = run(cls(ttft=1e-4))
    assert (r.tokens_per_s == 0).all() and 3 in r.reason


def test_feasible_points_meet_their_slo():
    c = cls()
    r = run(c)
    ok = r.tokens_per_s > 0
    assert ok.any()
    assert (r.tpot[ok] <= c.tpot_s).all() and (r.ttft[ok] <= c.ttft_s + 1e-12).all()


def test_long_output_tails_fill_the_kv_cache_sooner():
    """Same mean output, heavier tail: a running batch holds the long outputs longer, so the batch the KV
    cache allows (and the capacity it bounds) shrinks; with no spread nothing changes."""
    base = ClassStats("c", "m", 1.0, 2000.0, 4000.0, 6000.0, 2000.0 ** 2 * 1.2, 800.0, 30.0, 1.0, 99.0)
    flat = run(base, bl=(2048,), ch=(8192,))
    same = run(ClassStats(**{**base.__dict__, "osl_sq_mean": 4000.0 ** 2}), bl=(2048,), ch=(8192,))
    heavy = run(ClassStats(**{**base.__dict__, "osl_sq_mean": 4000.0 ** 2 * 3}), bl=(2048,), ch=(8192,))
    assert np.array_equal(flat.tokens_per_s, same.tokens_per_s)
    assert heavy.batch[0, 0, 0] < flat.batch[0, 0, 0]
    assert heavy.tokens_per_s[0, 0, 0] < flat.tokens_per_s[0, 0, 0]


def test_mtp_and_wide_ep_in_the_screen():
    """A reasoning class on DeepSeek-R1: MTP at a published acceptance lifts capacity under a tight TPOT SLO;
    a wide-EP layout is screened over its per-rank batch grid (more sequences than one rank's grid)."""
    from tokenfab.deployment import design_layout
    ds, h200 = load_model("deepseek-r1"), load_chip("h200")
    params = shipped_calibration().for_chip(h200)
    mix = Mix.of([cls(tpot=0.03, ttft=5.0, isl=2000.0, osl=2000.0)])
    bl, ch = np.array([256.0, 4096.0]), np.array([4096.0])
    base = design_layout(ds, 8, 1, 1, "fp8", "fp8")
    spec = design_layout(ds, 8, 1, 1, "fp8", "fp8", mtp=1)
    wide = design_layout(ds, 1, 1, 8, "fp8", "fp8")
    plain = screen_layout(ds, h200, base, params, mix, bl, ch).tokens_per_s.max()
    assert spec.accept > 1.5 and screen_layout(ds, h200, spec, params, mix, bl, ch).tokens_per_s.max() > plain
    assert wide.attn_dp == 8 and wide.overlap
    loose = Mix.of([cls(tpot=0.2, ttft=5.0, isl=2000.0, osl=2000.0)])
    assert screen_layout(ds, h200, wide, params, loose, bl, ch).batch.max() > 256
