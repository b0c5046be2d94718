#!/usr/bin/env bash
# Screenshots of the two HTML reports, 1280 px wide, rendered by headless Chromium:
#   OUTDIR/design-report.{html,png}  from a small, fast design problem (one class, one model, four chips)
#   OUTDIR/fleet-report.{html,png}   from examples/fleet/gpu-only.yaml (the faster example plan)
#
#   scripts/report_screenshots.sh OUTDIR
#
# Uses the tokenfab CLI of the project's .venv (or $TOKENFAB, or tokenfab on PATH) and Debian's chromium
# (or $CHROMIUM). The SLO-capacity cache lives in OUTDIR/cache, so a second run into the same OUTDIR is faster.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
chromium=${CHROMIUM:-chromium}
if ! command -v "$chromium" >/dev/null 2>&1; then
    echo "error: $chromium not found (apt-get install chromium, or set CHROMIUM)" >&2
    exit 1
fi
if [[ -n ${TOKENFAB:-} ]]; then
    tokenfab=$TOKENFAB
elif [[ -x $root/.venv/bin/tokenfab ]]; then
    tokenfab=$root/.venv/bin/tokenfab
else
    tokenfab=tokenfab
fi
mkdir -p "$1"
out=$(cd "$1" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat >"$work/design.yaml" <<'EOF'
traffic: {mix: {chat: 1.0}}
models: [llama-3.1-8b]
assign: {}
demand_output_tokens_per_day: 2.0e+10
constraints: {node: n3, power_w: 1500, max_chiplets: 2}
space: {cores: [64, 128], clock_ghz: [1.8], memory: ["HBM3E:4x36", "HBM3E:8x36"], sram_shared_mb: [128],
        scaleup_links: [16], scaleup_domain: [32], scaleout_gbps: [400]}
deployment: {tp: [1, 2], pp: [1], weight_precision: [fp8], kv_precision: [fp8], max_batch: [64, 256],
             chunk_tokens: [2048], disaggregated: [false]}
EOF

echo "design report -> $out/design-report.html"
"$tokenfab" design --problem "$work/design.yaml" --exhaustive --top 3 --sim-requests 300 --samples 50 --jobs 1 \
    --store "$work/design.duckdb" --report "$out/design-report.html" >"$work/design.log" 2>&1 \
    || { tail -n 5 "$work/design.log" >&2; exit 1; }

echo "fleet report -> $out/fleet-report.html"
"$tokenfab" fleet "$root/examples/fleet/gpu-only.yaml" --store "$work/fleet.duckdb" --cache "$out/cache" \
    --report "$out/fleet-report.html" >"$work/fleet.log" 2>&1 \
    || { tail -n 5 "$work/fleet.log" >&2; exit 1; }

for name in design-report fleet-report; do
    "$chromium" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,2400 \
        --virtual-time-budget=10000 --disable-background-networking --disable-component-update --disable-sync \
        --no-first-run --user-data-dir="$work/profile" \
        --screenshot="$out/$name.png" "file://$out/$name.html" >"$work/$name.chromium.log" 2>&1 \
        || { tail -n 5 "$work/$name.chromium.log" >&2; exit 1; }
    [[ -s $out/$name.png ]] || { echo "error: chromium wrote no $out/$name.png" >&2; exit 1; }
    echo "screenshot -> $out/$name.png"
done
