"""DeepSeek's production decode figure from its published deployment, and SGLang's 96-H100 large-EP decode.

DeepSeek (open-infra-index, day 6, 2025-02-28; DEEPSEEK_INFRA_2025 in data/measured/calibration-moe.jsonl):
H800 decode units of 18 nodes, routed experts EP144 with 32 redundant, MLA and shared expert DP144, dual
micro-batch overlap, FP8 matmuls, average KV length 4,989 per output token, users served at 20-22 tok/s;
measured ~14.8k output tok/s per node = 1,850 per GPU. The batch is not published: Little's law gives it
from the user speed, so the prediction is the decode throughput per GPU at the batch whose predicted TPOT
is 1/21 s. MTP: DeepSeek-V3 report (arXiv 2412.19437 §5.4.3) 85-90% second-token acceptance.

SGLang (LMSYS_LARGE_EP_2025-004): 9 decode nodes of 8 H100, EP72 with 288 physical experts, DP72
attention, two-batch overlap, batch 256 per GPU at KV length 2,000: 22,282 output tok/s per node.

    python benchmarks/deepseek_production.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from scipy.optimize import brentq  # noqa: E402

from tokenfab.deployment import Deployment  # noqa: E402
from tokenfab.hardware import load_chip  # noqa: E402
from tokenfab.model import load_model  # noqa: E402
from tokenfab.perf import StepShapes, step_cost  # noqa: E402
from tokenfab.perf.params import shipped_calibration  # noqa: E402
from tokenfab.speculation import default_acceptance  # noqa: E402

MEASURED_PER_GPU = 14_800 / 8
USER_TOK_S = 21.0          # 20-22 tok/s published
KV_LEN = 4989.0


def deepseek(mtp: int) -> tuple[float, float]:
    """(output tok/s per GPU, sequences per GPU) at the published user speed."""
    model, chip = load_model("deepseek-v3"), load_chip("h800")
    accept = default_acceptance("deepseek-v3", mtp)
    dep = Deployment(tp=1, ep=144, redundant_experts=32, weight_precision="fp8", act_precision="fp8",
                     kv_precision="bf16", engine="deepseek-inhouse", overlap=True, micro_batches=2, mtp=mtp,
                     accept=accept)
    dep.check(model, chip)
    params = shipped_calibration().for_chip(chip)

    def user_speed(batch: float) -> float:
        step = float(step_cost(model, chip, dep, StepShapes.decode(batch, KV_LEN), params).time[0])
        return accept / step

    batch = brentq(lambda b: user_speed(b) - USER_TOK_S, 144.0, 144.0 * 2048)
    return batch * USER_TOK_S / dep.devices, batch / dep.devices


def sglang_large_ep() -> float:
    model, chip = load_model("deepseek-v3"), load_chip("h100-sxm")
    dep = Deployment(tp=1, ep=72, redundant_experts=32, weight_precision="fp8", act_precision="fp8",
                     kv_precision="bf16", engine="sglang-pd-ep-2025-05", overlap=True, micro_batches=2)
    params = shipped_calibration().for_chip(chip)
    batch = 256.0 * 72
    step = float(step_cost(model, chip, dep, StepShapes.decode(batch, 2000.0), params).time[0])
    return batch / step / dep.devices


def main() -> None:
    for mtp in (1, 0):
        per_gpu, seqs = deepseek(mtp)
        print(f"DeepSeek H800 EP144, MTP {mtp}: {per_gpu:,.0f} output tok/s per GPU at {seqs:.0f} sequences per GPU "
              f"(measured {MEASURED_PER_GPU:,.0f}; error {per_gpu / MEASURED_PER_GPU - 1:+.1%})")
    got = sglang_large_ep()
    measured = 22_282 / 8
    print(f"SGLang 72 x H100 EP72 decode: {got:,.0f} output tok/s per GPU (measured {measured:,.0f}; "
          f"error {got / measured - 1:+.1%})")


if __name__ == "__main__":
    main()
