"""The network as a priced system: what the scale-up domain and the scale-out fabric cost per accelerator.

Why a model and not one flat figure per chip: a non-blocking fat tree needs more switches and more optics per
endpoint with every tier it adds, and its tiers grow with the cluster (the log of its size in the switch radix);
faster ports halve the radix of the same switch and cost more per NIC and transceiver; a scale-up domain beyond one
rack needs optics and a second switch tier (NVL576) or optical circuit switches (TPU pods). So the network's share of
an accelerator's cost and power is a function of the cluster, the port speed and the scale-up fabric, built from
parts the catalog prices (`network_*` in catalog/data/silicon.yaml, each with its source and low/high, drawn by
`Draws` like every other uncertain input of the TCO).

Four parts, named as `economics.SYSTEM_PARTS` so a price that already holds one is not charged it again:
- `scaleup`: the scale-up switches (NVLink switch chips on an HGX board or in an NVL72's trays, a scale-up Ethernet
  switch tier) and the copper inside the rack: what a rack-level price holds;
- `pod`: the scale-up fabric beyond the rack: upper switch tiers, optics and fibre, optical circuit switch ports;
- `nic`: the scale-out NIC ports (in a rack-scale system's compute trays, so a rack price holds them);
- `network`: the scale-out fabric: the accelerator's share of the fat tree's switches, two transceivers per optical
  link, fibre.
Their power is always drawn, whoever paid for the parts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tokenfab import catalog
from tokenfab.constants import Draws, get, keys
from tokenfab.hardware import Chip

Num = float | np.ndarray
SPEEDS_GBPS = (400, 800, 1600)          # port classes the catalog prices (NIC, transceiver): keys 400g, 800g, 1600g
PARTS = ("network", "scaleup", "pod", "nic")   # this module's share of economics.SYSTEM_PARTS
MAX_TIERS = 8
NVLINK_LINKS = {"nvlink3": 12, "nvlink4": 18, "nvlink5": 18, "nvlink6": 18}   # links per GPU (A100 12; H100 on 18)
SCALEUP_SWITCHES = ("tomahawk_ultra", "tomahawk6")   # scale-up Ethernet switches, smallest first
CATALOG_SWITCHED_LINK_GBPS = 800.0           # UALink / scale-up Ethernet port (4 x 200G) when a record names none


class NetworkError(ValueError):
    """A fabric the model cannot price (an unknown port class or switch)."""


def fixed(name: str, *path: str) -> float:
    """A certain catalog figure (a switch's capacity, a rack's size): its value, never drawn, so that radices and
    tier counts stay plain numbers under Monte Carlo draws."""
    return get(name, *path).value


# ---- fat trees ----------------------------------------------------------------------------------------------------


def fat_tree_capacity(tiers: Num, radix: float) -> Num:
    """Endpoints a non-blocking fat tree of `tiers` tiers of radix-k switches reaches: 2 (k/2)^t, i.e. k for one
    switch, k^2/2 for leaf-spine (radix 64: 2,048), k^3/4 for three tiers (radix 64: 65,536). Every switch below the
    top gives half its ports to the tier below and half to the tier above; the top tier gives all of them down."""
    return 2.0 * (radix / 2.0) ** np.asarray(tiers, dtype=float)


def fat_tree_tiers(endpoints: Num, radix: float) -> Num:
    """Fewest tiers whose fat tree reaches `endpoints` (at least 1), elementwise."""
    if radix < 2:
        raise NetworkError(f"switch radix {radix!r}: a fat tree needs at least 2 ports per switch")
    n = np.asarray(endpoints, dtype=float)
    tiers = np.ones_like(n)
    for t in range(1, MAX_TIERS):
        tiers = tiers + (n > fat_tree_capacity(t, radix))
    return tiers if tiers.ndim else float(tiers)


def switches_per_endpoint(tiers: Num, radix: float) -> Num:
    """Switches per endpoint of a t-tier fat tree: each of the t-1 lower tiers has one switch per k/2 endpoints, the
    top one per k, so (2t - 1) / k. Bought in proportion to the ports used (a part-filled switch serves other
    tenants or is a smaller box), which keeps the cost per endpoint non-decreasing in the cluster size."""
    return (2.0 * np.asarray(tiers, dtype=float) - 1.0) / radix


# ---- port classes -------------------------------------------------------------------------------------------------


def speed_key(gbps: float) -> str:
    """The catalog class of a port: the slowest of 400G/800G/1.6T that carries `gbps` (1.6T beyond)."""
    for s in SPEEDS_GBPS:
        if gbps <= s:
            return f"{s}g"
    return f"{SPEEDS_GBPS[-1]}g"


def key_gbps(key: str) -> float:
    return float(key.rstrip("g"))


def optics_per_link_end(link_gbps: float, d: Draws) -> tuple[Num, Num]:
    """$ and W of the transceivers at one end of an optical link of `link_gbps` (each direction): one module of the
    slowest class that carries it, or ceil(link / 1.6T) 1.6T modules. Whole modules, so a faster link never costs
    less."""
    key = speed_key(link_gbps)
    n = max(1.0, math.ceil(link_gbps / key_gbps(key)))
    return n * d("network_transceiver_usd", key), n * d("network_transceiver_w", key)


def nic_ports(gbps: float) -> tuple[str, float]:
    """Port class and NIC ports per accelerator for `gbps` of scale-out bandwidth. Below 400G a chip holds that share
    of its host's 400G NIC (TPU hosts: four chips at 100G on one host's NICs); above, whole ports of the slowest class
    that carries it, 1.6T ports beyond 1.6T."""
    if gbps <= SPEEDS_GBPS[0]:
        return f"{SPEEDS_GBPS[0]}g", max(gbps, 1e-9) / SPEEDS_GBPS[0]
    key = speed_key(gbps)
    return key, float(math.ceil(gbps / key_gbps(key)))


SCALEOUT_SWITCH = {"ethernet": {"400g": "tomahawk5", "800g": "tomahawk5", "1600g": "tomahawk6"},
                   "infiniband": {"400g": "quantum2", "800g": "quantum_x800"}}


def scaleout_switch(key: str, fabric: str = "ethernet") -> str:
    """The switch a fabric uses for ports of class `key`: Ethernet at 400/800G on 51.2 Tb/s (Tomahawk 5 /
    Spectrum-4 class), 1.6T on 102.4 Tb/s (Tomahawk 6); InfiniBand 400G on Quantum-2, 800G on Quantum-X800."""
    if fabric not in SCALEOUT_SWITCH:
        raise NetworkError(f"scale-out fabric {fabric!r}: allowed {', '.join(SCALEOUT_SWITCH)}")
    table = SCALEOUT_SWITCH[fabric]
    if key not in table:
        raise NetworkError(f"{fabric} has no {key} switch in the catalog: allowed {', '.join(table)}")
    return table[key]


def radix(switch: str, port_gbps: float, d: Draws) -> float:
    """Ports of `port_gbps` one switch offers: its capacity over the port speed (51.2 Tb/s: 128 x 400G, 64 x 800G)."""
    return fixed("network_switch_tbps", switch) * 1000.0 / port_gbps


# ---- scale-out ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScaleOut:
    """One accelerator's share of the scale-out fabric (floats, or arrays over cluster sizes / Monte Carlo draws)."""

    usd: Num          # switches, transceivers, fibre
    w: Num
    nic_usd: Num
    nic_w: Num
    tiers: Num
    port: str         # port class (400g, 800g, 1600g)
    ports: float      # NIC ports per accelerator (a fraction: a share of the host's NIC)
    switch: str


def scaleout(chips: Num, gbps: float, d: Draws, fabric: str = "ethernet") -> ScaleOut:
    """Scale-out network per accelerator for a cluster of `chips` accelerators with `gbps` of NIC bandwidth each, on a
    non-blocking (1:1) fat tree, rail-optimised or not (rail-optimised wiring groups each leaf by GPU rank; it has the
    same switches, links and optics as a fat tree of the same radix). Per NIC port: the NIC, (2t - 1)/k switches, t
    links (NIC to leaf, then one per tier boundary), all optical (leaves sit at the end of the row), with a transceiver
    at each end and a fibre. t grows with the cluster, so the share does too."""
    key, ports = nic_ports(gbps)
    switch = scaleout_switch(key, fabric)
    k = radix(switch, key_gbps(key), d)
    endpoints = np.maximum(np.asarray(chips, dtype=float), 1.0) * ports
    t = fat_tree_tiers(endpoints, k)
    sw = switches_per_endpoint(t, k)
    per_port_usd = (sw * d("network_switch_usd", switch) + 2.0 * np.asarray(t) * d("network_transceiver_usd", key)
                    + np.asarray(t) * d("network_fibre_usd_per_link"))
    per_port_w = sw * d("network_switch_w", switch) + 2.0 * np.asarray(t) * d("network_transceiver_w", key)
    return ScaleOut(ports * per_port_usd, ports * per_port_w, ports * d("network_nic_usd", key),
                    ports * d("network_nic_w", key), t, key, ports, switch)


# ---- scale-up -----------------------------------------------------------------------------------------------------

SCALEUP_KINDS = ("none", "direct", "switched", "nvlink", "torus")


@dataclass(frozen=True)
class ScaleUp:
    """A chip's scale-up fabric as the cost model sees it.

    kind: none (PCIe or a 2-card bridge: nothing to buy), direct (a full mesh of point-to-point links on the board),
    switched (a switch tier; scale-up Ethernet / UALink class), nvlink (NVIDIA's NVLink switch chips), torus (TPU ICI:
    direct links in a torus, copper inside a block, optical between blocks through optical circuit switches)."""

    kind: str
    domain: int = 1
    bw_gbps: float = 0.0      # per chip, each direction
    link_gbps: float = 0.0    # per link, each direction
    nvlink: str | None = None
    dims: int = 3

    def __post_init__(self) -> None:
        if self.kind not in SCALEUP_KINDS:
            raise NetworkError(f"scale-up kind {self.kind!r}: allowed {', '.join(SCALEUP_KINDS)}")

    @property
    def links(self) -> float:
        return self.bw_gbps / self.link_gbps if self.link_gbps > 0 else 0.0


@dataclass(frozen=True)
class ScaleUpCost:
    """Scale-up $ and W per chip: inside the rack (`scaleup`) and beyond it (`pod`)."""

    rack_usd: Num
    pod_usd: Num
    rack_w: Num
    pod_w: Num
    tiers: float


def _field(obj: Any, name: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def scaleup_of_design(design: Any) -> ScaleUp:
    """The scale-up fabric of a `ChipDesign` (or its dict): links x lanes x lane rate into a domain. `ici` is a torus;
    `infinity-fabric` with a link to every peer a direct mesh; `pcie`, `nvlink-bridge` or no links nothing to buy;
    anything else (`roce`, `nvswitch`, `other`) a switched domain on scale-up Ethernet switches."""
    s = _field(design, "scaleup")
    links = int(_field(s, "links", 0) or 0)
    link = float(_field(s, "lanes_per_link", 1) or 1) * float(_field(s, "lane_gbps", 100.0) or 100.0)
    domain = int(_field(s, "domain", 1) or 1)
    fabric = str(_field(s, "fabric", "other") or "other")
    if links == 0 or domain <= 1 or fabric in ("pcie", "nvlink-bridge"):
        return ScaleUp("none", domain)
    if fabric == "ici":
        return ScaleUp("torus", domain, links * link, link)
    if fabric == "infinity-fabric" and links >= domain - 1:
        return ScaleUp("direct", domain, links * link, link)
    return ScaleUp("switched", domain, links * link, link)


def nvlink_generation(text: str, bidir_gbs: float) -> str:
    """NVLink generation from the catalog's fabric text ("NVLink 4 ..."), else from the per-GPU bandwidth."""
    m = re.search(r"nvlink\s*(\d)", text.lower())
    if m and f"nvlink{m.group(1)}" in NVLINK_LINKS:
        return f"nvlink{m.group(1)}"
    if bidir_gbs >= 3000:
        return "nvlink6"
    if bidir_gbs >= 1500:
        return "nvlink5"
    return "nvlink4" if bidir_gbs >= 800 else "nvlink3"


def scaleup_of_chip(chip: Chip) -> ScaleUp:
    """A catalog chip's scale-up fabric from its record: NVSwitch domains are NVLink switch fabrics; ICI a torus (3-D
    where the record says so, else 2-D); a RoCE/other domain of more than 8 (Helios's UALink-over-Ethernet) switched,
    up to 8 (Gaudi, Maia, Groq) a direct mesh, like Infinity Fabric; PCIe and NVLink bridges nothing to buy."""
    domain = int(chip.scaleup_domain or 1)
    bw = chip.scaleup_bw * 8.0 / 1e9
    if domain <= 1 or bw <= 0 or chip.scaleup_kind in ("pcie", "nvlink-bridge"):
        return ScaleUp("none", domain)
    rec = (catalog.accelerators().get(chip.id) or {}).get("scaleup") or {}
    text = str(rec.get("fabric") or "")
    if chip.scaleup_kind == "nvswitch":
        gen = nvlink_generation(text, 2.0 * bw / 8.0)
        m = re.search(r"(\d+)\s*links?", text.lower())
        links = int(m.group(1)) if m else NVLINK_LINKS[gen]
        return ScaleUp("nvlink", domain, bw, bw / links, nvlink=gen)
    if chip.scaleup_kind == "ici":
        dims = 3 if "3d" in text.lower().replace(" ", "") else 2
        return ScaleUp("torus", domain, bw, bw / (2 * dims), dims=dims)
    if chip.scaleup_kind in ("roce", "other") and domain > 8:
        return ScaleUp("switched", domain, bw, CATALOG_SWITCHED_LINK_GBPS)
    return ScaleUp("direct", domain, bw, bw / max(domain - 1, 1))


def scaleup_of(chip: Chip | None, design: Any = None) -> ScaleUp:
    """The scale-up fabric of a design (given, or the chip's `design_path`) or of a catalog chip."""
    if design is None and chip is not None and "design_path" in chip.sources:
        from tokenfab.silicon import resolve_design
        design = resolve_design(chip.sources["design_path"])
    if design is not None:
        return scaleup_of_design(design)
    if chip is None:
        return ScaleUp("none")
    return scaleup_of_chip(chip)


def scaleup_switch(su: ScaleUp, d: Draws) -> str:
    """The scale-up Ethernet switch of a switched domain: Tomahawk Ultra (51.2 Tb/s) while one tier of it reaches the
    domain at the link rate (64 ports of 800G), else Tomahawk 6 (102.4 Tb/s: 128 x 800G, 512 x 200G)."""
    for switch in SCALEUP_SWITCHES:
        if su.domain <= fixed("network_switch_tbps", switch) * 1000.0 / su.link_gbps:
            return switch
    return SCALEUP_SWITCHES[-1]


def scaleup_cost(su: ScaleUp, d: Draws) -> ScaleUpCost:
    """$ and W per chip of its scale-up fabric, split at the rack (what a rack price holds) and beyond it.

    - direct mesh: one copper link per pair of link ends (the SerDes are in the chip, the traces in the board);
    - nvlink: the catalog's switch chips per GPU for one tier (HGX H100 4 per 8, NVL72 18 per 72) in the rack; a
      domain beyond one tier's GPUs adds tiers as a fat tree of that size (NVL576: two), with (2t - 2) more switch
      chips per GPU and a transceiver at each end of every upper link;
    - switched: the chip's bandwidth over the switch's (`scaleup_switch`), times (2t - 1) for a t-tier fat tree whose
      radix is the switch capacity over the link rate; copper to the first tier; a domain beyond a rack takes at
      least two tiers, its leaves in the rack and its upper tiers, optics and fibre beyond it;
    - torus: copper inside the block (TPU 4 x 4 x 4 cube); beyond it every link end on the block's surface (links /
      side per chip: 1.5 for a 3-D TPU cube) has a transceiver, a fibre and an optical-circuit-switch port.
    A larger domain never costs less per chip, and more or faster links cost more."""
    zero = ScaleUpCost(0.0, 0.0, 0.0, 0.0, 1.0)
    if su.kind == "none" or su.domain <= 1:
        return zero
    copper = d("network_copper_usd_per_link")
    fibre = d("network_fibre_usd_per_link")
    if su.kind == "direct":
        return ScaleUpCost(su.links / 2.0 * copper, 0.0, 0.0, 0.0, 1.0)
    if su.kind == "torus":
        rack = su.links / 2.0 * copper
        block = fixed("network_torus_block_chips")
        if su.domain <= block:
            return ScaleUpCost(rack, 0.0, 0.0, 0.0, 1.0)
        ends = su.links / block ** (1.0 / su.dims)
        x_usd, x_w = optics_per_link_end(su.link_gbps, d)
        return ScaleUpCost(rack, ends * (x_usd + fibre + d("network_ocs_usd_per_port")), 0.0,
                           ends * (x_w + d("network_ocs_w_per_port")), 1.0)
    rack_chips = fixed("network_rack_chips")
    x_usd, x_w = optics_per_link_end(su.link_gbps, d)
    if su.kind == "nvlink":
        gen = su.nvlink or "nvlink5"
        per_tier = fixed("network_nvlink_single_tier_gpus", gen)
        t = 1.0 if su.domain <= per_tier else float(fat_tree_tiers(su.domain, per_tier))
        chips = d("network_nvlink_switch_chips_per_gpu", gen)
        usd, w = d("network_nvlink_switch_usd", gen), d("network_nvlink_switch_w", gen)
        upper = su.links * (t - 1.0)       # upper-tier links per GPU, a transceiver at each end
        return ScaleUpCost(chips * usd, chips * (2.0 * t - 2.0) * usd + upper * (2.0 * x_usd + fibre),
                           chips * w, chips * (2.0 * t - 2.0) * w + upper * 2.0 * x_w, t)
    switch = scaleup_switch(su, d)
    cap = fixed("network_switch_tbps", switch) * 1000.0
    k = cap / su.link_gbps
    t = float(fat_tree_tiers(su.domain, k))
    if su.domain > rack_chips:
        t = max(t, 2.0)
    share = su.bw_gbps / cap                      # switches per chip in a tier whose ports all face chips
    total = share * (2.0 * t - 1.0)
    s_usd, s_w = d("network_scaleup_switch_usd", switch), d("network_scaleup_switch_w", switch)
    first = su.links * copper
    if su.domain <= rack_chips:                   # every tier in the rack, on copper
        upper = su.links * (t - 1.0) * copper
        return ScaleUpCost(total * s_usd + first + upper, 0.0, total * s_w, 0.0, t)
    leaves = 2.0 * share                          # leaves: half their ports down, in the rack
    upper = su.links * (t - 1.0)
    return ScaleUpCost(leaves * s_usd + first, (total - leaves) * s_usd + upper * (2.0 * x_usd + fibre),
                       leaves * s_w, (total - leaves) * s_w + upper * 2.0 * x_w, t)


# ---- one accelerator's share of the whole network -----------------------------------------------------------------


@dataclass(frozen=True)
class NetworkShare:
    """Network capex and power per accelerator, by part (floats, or arrays over clusters / Monte Carlo draws)."""

    scaleup_usd: Num
    pod_usd: Num
    nic_usd: Num
    scaleout_usd: Num        # the fabric: switches, transceivers, fibre
    scaleup_w: Num
    pod_w: Num
    nic_w: Num
    scaleout_w: Num
    cluster: Num
    tiers: Num               # scale-out fat-tree tiers
    port: str = "400g"
    scaleup: ScaleUp = ScaleUp("none")

    def usd(self, included: Collection[str] = ()) -> Num:
        """Capex per accelerator of the parts a price does not already hold (`included`: scaleup, pod, nic,
        network)."""
        return ((0.0 if "scaleup" in included else self.scaleup_usd) + (0.0 if "pod" in included else self.pod_usd)
                + (0.0 if "nic" in included else self.nic_usd)
                + (0.0 if "network" in included else self.scaleout_usd))

    @property
    def w(self) -> Num:
        """Power per accelerator of the whole network (drawn whoever paid for it)."""
        return self.scaleup_w + self.pod_w + self.nic_w + self.scaleout_w


def nic_gbps(chip: Chip | None, d: Draws, design: Any = None) -> float:
    """Scale-out Gb/s per accelerator: a design's `scaleout_gbps`, a catalog record's, else the catalog's per-chip
    figure (`network_nic_gbps`: TPU DCN 50-100G, GB300 800G, VR200 1.6T) or its default (one 400G NIC per GPU)."""
    if design is None and chip is not None and "design_path" in chip.sources:
        from tokenfab.silicon import resolve_design
        design = resolve_design(chip.sources["design_path"])
    if design is not None:
        g = float(_field(design, "scaleout_gbps", 0.0) or 0.0)
        if g > 0:
            return g
    elif chip is not None and chip.scaleout_bw > 0:
        return chip.scaleout_bw * 8.0 / 1e9
    key = chip.id if chip is not None and chip.id in keys("network_nic_gbps") else "default"
    return fixed("network_nic_gbps", key)


def chip_network(chip: Chip | None, d: Draws, cluster: Num | None = None, design: Any = None,
                 fabric: str = "ethernet") -> NetworkShare:
    """One accelerator's share of the network in a cluster of `cluster` accelerators (default: the catalog's
    `network_cluster_chips`): its scale-up fabric (from the design, else the catalog record) and the scale-out fat
    tree at its NIC bandwidth."""
    su = scaleup_of(chip, design)
    up = scaleup_cost(su, d)
    n = fixed("network_cluster_chips") if cluster is None else cluster
    out = scaleout(n, nic_gbps(chip, d, design), d, fabric)
    return NetworkShare(up.rack_usd, up.pod_usd, out.nic_usd, out.usd, up.rack_w, up.pod_w, out.nic_w, out.w, n,
                        out.tiers, out.port, su)


def default_share(d: Draws) -> NetworkShare:
    """A chip-agnostic share (no scale-up fabric, one 400G NIC in the default cluster) for callers with no chip."""
    return chip_network(None, d)


def summary(share: NetworkShare) -> dict[str, Any]:
    """Nominal figures of a share, for reports and `--json`."""
    def f(x: Num) -> float:
        return float(np.median(np.asarray(x, dtype=float)))
    return {"usd_per_accelerator": {"scaleup": f(share.scaleup_usd), "pod": f(share.pod_usd),
                                    "nic": f(share.nic_usd), "scaleout": f(share.scaleout_usd)},
            "w_per_accelerator": {"scaleup": f(share.scaleup_w), "pod": f(share.pod_w), "nic": f(share.nic_w),
                                  "scaleout": f(share.scaleout_w)},
            "cluster_chips": f(share.cluster), "scaleout_tiers": f(share.tiers), "port": share.port,
            "scaleup_kind": share.scaleup.kind, "scaleup_domain": share.scaleup.domain}


__all__ = ["PARTS", "SPEEDS_GBPS", "NetworkError", "NetworkShare", "ScaleOut", "ScaleUp", "ScaleUpCost",
           "chip_network", "default_share", "fat_tree_capacity", "fixed", "fat_tree_tiers", "nic_gbps", "nic_ports",
           "nvlink_generation", "optics_per_link_end", "radix", "scaleout", "scaleout_switch", "scaleup_cost",
           "scaleup_of", "scaleup_of_chip", "scaleup_of_design", "scaleup_switch", "speed_key", "summary",
           "switches_per_endpoint"]
