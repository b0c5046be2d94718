"""The serving simulator against a real serving run: fit the step model on some runs' steps, replay every
run's arrivals through the simulator, compare TTFT and TPOT (no GPU needed; the log comes from
`benchmarks/gpu_serving.py`).

    python benchmarks/serving_check.py data/measured/gpu-h100-serving/serving.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tokenfab.calibrate.serving_check import METRICS, check, check_log  # noqa: E402
from tokenfab.deployment import Deployment  # noqa: E402
from tokenfab.hardware import chip_from_record, load_chip  # noqa: E402
from tokenfab.model import load_model  # noqa: E402
from tokenfab.perf.params import shipped_calibration  # noqa: E402


def main(path: str) -> int:
    try:
        data = json.loads(Path(path).read_text())
        prov = data["provenance"]
        chip = chip_from_record(data["chip_record"]) if data.get("chip_record") else load_chip(prov["hardware"])
        model = load_model(prov["model"])
        data["config"]   # noqa: B018 - present, or the file is not a serving log
        check_log(data)
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"error: {path}: not a serving log of benchmarks/gpu_serving.py ({type(e).__name__}: {e})",
              file=sys.stderr)
        return 2
    dep = Deployment(engine=prov["engine"])
    params, checks, step_err = check(data, model, chip, dep, shipped_calibration().for_chip(chip))
    print(f"{prov.get('gpu_name', prov.get('cpu_name'))}, {prov['model']}, capacity {data['capacity_rps']:.2f} req/s; "
          f"step model on the steps it was not fitted on: median |error| {step_err['held_out_step_median_abs']:.1%} "
          f"(decode-only {step_err.get('held_out_decode_only_median_abs', float('nan')):.1%}, with prompt work "
          f"{step_err.get('held_out_with_prompt_median_abs', float('nan')):.1%})")
    print(f"step model unfitted (the shipped calibration): median error {step_err['unfitted_step_median']:+.1%} "
          "on the same steps")
    print("each cell: measured ms, simulated ms, error; then the error with the unfitted step model")
    print(f"{'run':10s} {'req/s':>7s} {'fit':>4s} " + " ".join(f"{m:>34s}" for m in METRICS))
    for c in checks:
        cells = " ".join(f"{c.measured[m]:8.1f} {c.simulated[m]:8.1f} {c.error(m):+7.1%} ({c.error(m, False):+6.1%})"
                         for m in METRICS)
        print(f"{c.name:10s} {c.rate:7.2f} {'yes' if c.fitted else 'no':>4s} {cells}")
    held = [c for c in checks if not c.fitted]
    summary = {m: float(np.median([abs(c.error(m)) for c in held])) for m in METRICS}
    unfitted = {m: float(np.median([abs(c.error(m, False)) for c in held])) for m in METRICS}
    print("held-out runs, median |error|: " + ", ".join(f"{m} {v:.1%}" for m, v in summary.items()))
    print("  unfitted step model:         " + ", ".join(f"{m} {v:.1%}" for m, v in unfitted.items()))
    out = Path(path).with_name("check.json")
    out.write_text(json.dumps({"step_error": step_err, "held_out_median_abs": summary,
                               "held_out_median_abs_unfitted": unfitted,
                               "runs": [c.__dict__ for c in checks],
                               "fitted_params": {k: getattr(params, k) for k in (
                                   "gemm_eff", "mem_eff", "kv_mem_eff", "attn_eff", "elem_scale", "t_step",
                                   "t_layer")}}, indent=1, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python benchmarks/serving_check.py SERVING.json")
    sys.exit(main(sys.argv[1]))
