"""`tokenfab hardware list|show` and `tokenfab model list|show`: the accelerator catalog and the model zoo."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from tokenfab import catalog
from tokenfab.cli.io import JsonOpt, fail, out, print_json
from tokenfab.units import GiB


def hardware_list(as_json: JsonOpt = False) -> None:
    """Every accelerator in the catalog, with its headline figures."""
    from rich.table import Table

    from tokenfab.hardware import all_chips
    if as_json:
        print_json({"accelerators": [_chip_json(c) for c in sorted(all_chips(), key=lambda c: c.id)]})
        return
    table = Table("id", "name", "family", "bf16 TFLOP/s", "fp8", "fp4", "memory GiB", "TB/s", "scale-up", "TDP W",
                  "$/h")
    for c in sorted(all_chips(), key=lambda c: c.id):
        def tf(p: str, c: Any = c) -> str:
            return f"{c.peak_flops[p] / 1e12:.0f}" if p in c.peak_flops else "-"
        cloud = f"{c.cloud_usd_hr.value:.2f}" if c.cloud_usd_hr else "-"
        table.add_row(c.id, c.name, c.family, tf("bf16") if "bf16" in c.peak_flops else tf("fp16"), tf("fp8"),
                      tf("fp4"), f"{c.mem_bytes / GiB:.0f}", f"{c.mem_bw / 1e12:.2f}",
                      f"{c.scaleup_kind} x{c.scaleup_domain}", f"{c.tdp_w:.0f}" if c.tdp_w else "-", cloud)
    out.print(table)


def _chip_json(c: Any) -> dict[str, Any]:
    """`hardware list --json`: one accelerator's headline figures, in the units their keys name."""
    return {"id": c.id, "name": c.name, "family": c.family,
            "peak_tflops": {p: v / 1e12 for p, v in c.peak_flops.items()},
            "memory_gib": c.mem_bytes / GiB, "memory_tb_per_s": c.mem_bw / 1e12,
            "scaleup_kind": c.scaleup_kind, "scaleup_domain": c.scaleup_domain, "tdp_w": c.tdp_w or None,
            "cloud_usd_per_hour": c.cloud_usd_hr.value if c.cloud_usd_hr else None}


def hardware_show(hw_id: Annotated[str, typer.Argument(help="catalog id, e.g. h100-sxm")],
                  as_json: JsonOpt = False) -> None:
    """One accelerator's full catalog record, sources included (always JSON; --json: one strict line)."""
    try:
        rec = catalog.accelerator(hw_id)
    except KeyError as e:
        fail(str(e))
    if as_json:
        print_json(rec)
        return
    out.print_json(json.dumps(rec, default=str))


def _model_kind(m: Any) -> tuple[str, str]:
    """(dense|MoE, its attention: MLA, MHA, MQA or GQA)."""
    attention = "MLA" if m.is_mla else "MHA" if m.kv_heads == m.heads else "MQA" if m.kv_heads == 1 else "GQA"
    return ("MoE" if m.is_moe else "dense"), attention


def model_list(as_json: JsonOpt = False) -> None:
    """Every model in the zoo: kind, layers, total and active parameters (any HF config.json works too)."""
    from rich.table import Table

    from tokenfab.catalog import model_ids
    from tokenfab.model import load_model
    models = [(mid, load_model(mid)) for mid in model_ids()]
    if as_json:
        print_json({"models": [_model_entry(mid, m) for mid, m in models]})
        return
    table = Table("id", "kind", "layers", "total params", "active params", title="model zoo")
    for mid, m in models:
        kind = ("MoE" if m.is_moe else "dense") + (", MLA" if m.is_mla else "")
        table.add_row(mid, kind, str(m.layers), f"{m.total_params / 1e9:,.1f} B", f"{m.active_params / 1e9:,.1f} B")
    out.print(table)


def _model_entry(mid: str, m: Any) -> dict[str, Any]:
    """`model list --json`: one zoo model's row, parameters as counts."""
    kind, attention = _model_kind(m)
    return {"id": mid, "kind": kind, "attention": attention, "layers": m.layers, "total_params": m.total_params,
            "active_params": m.active_params}


# the contexts at which `model show` gives FLOPs per token
FLOPS_CONTEXTS = (0, 4096, 32768)


def model_show(model: Annotated[str, typer.Argument(help="zoo id or path to a config.json")],
               as_json: JsonOpt = False) -> None:
    """Parameters, weight bytes per precision, KV bytes per token and FLOPs per token."""
    from rich.table import Table

    from tokenfab.model import ModelConfigError, load_model
    from tokenfab.units import PRECISION_BYTES
    try:
        m = load_model(model)
    except (KeyError, ModelConfigError, ValueError) as e:
        fail(str(e))
    if as_json:
        print_json(_model_json(m))
        return
    kind = " ".join(_model_kind(m))
    table = Table("quantity", "value", title=f"{m.name} ({kind})")
    table.add_row("layers / hidden / heads / kv heads", f"{m.layers} / {m.hidden} / {m.heads} / {m.kv_heads}")
    if m.is_moe:
        table.add_row("experts / top-k / shared", f"{m.experts} / {m.top_k} / {m.shared_experts}")
    table.add_row("total parameters", f"{m.total_params / 1e9:.2f} B")
    table.add_row("active parameters per token", f"{m.active_params / 1e9:.2f} B")
    for p in ("bf16", "fp8", "fp4"):
        table.add_row(f"weight bytes at {p}", f"{m.total_params * PRECISION_BYTES[p] / 1e9:.1f} GB")
    for p in ("bf16", "fp8"):
        table.add_row(f"KV bytes per token at {p}", f"{m.kv_bytes_per_token(p) / 1e3:.1f} kB")
    for ctx in FLOPS_CONTEXTS:
        table.add_row(f"FLOPs per token at context {ctx}", f"{m.flops_per_token(ctx) / 1e9:.1f} GFLOP")
    out.print(table)


def _model_json(m: Any) -> dict[str, Any]:
    """`model show --json`: the table's figures in bytes and FLOPs (not GB and GFLOP), keyed by precision or
    context length."""
    from tokenfab.units import PRECISION_BYTES
    kind, attention = _model_kind(m)
    shape: dict[str, Any] = {"layers": m.layers, "hidden": m.hidden, "heads": m.heads, "kv_heads": m.kv_heads}
    if m.is_moe:
        shape.update(experts=m.experts, top_k=m.top_k, shared_experts=m.shared_experts)
    return {"name": m.name, "kind": kind, "attention": attention, **shape, "total_params": m.total_params,
            "active_params": m.active_params,
            "weight_bytes": {p: m.total_params * PRECISION_BYTES[p] for p in ("bf16", "fp8", "fp4")},
            "kv_bytes_per_token": {p: m.kv_bytes_per_token(p) for p in ("bf16", "fp8")},
            "flops_per_token_by_context": {str(ctx): m.flops_per_token(ctx) for ctx in FLOPS_CONTEXTS}}
