"""The fleet optimiser: a mixed-integer programme over purchases, rentals and routing, solved by HiGHS.

Inputs are plain arrays (`Instance`), so the programme can be tested and benchmarked without the
simulator. Decisions, month by month over the horizon:
  b[o, t]  servers of owned option o delivered in month t (integer; its supply cap, zero before its lead
           time or first delivery, is the variable's bound), in service for the option's life;
  z[o]     build custom chip o (binary): pays the NRE, allows its deliveries, commits its minimum volume;
  r[o, t]  chips of rented option o in month t (continuous, up to its availability);
  y[o,c,t] chips of option o serving class c in month t (continuous; only pairs that meet the class's SLO).
Demand is met exactly at the SLO capacity per chip; chips in service bound the routing; owned chips'
provisioned power stays under the datacenter's capacity. Cost (discounted monthly at the annual rate):
purchases at delivery less their straight-line residual value at the horizon's end (so a late purchase
is not charged a whole life it is not used for), NRE at the design start, rent, and per-chip-month opex
(idle power, maintenance, facility), plus the energy above idle of the chips actually serving.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import coo_matrix

SCALE = 1e-6          # the objective is solved in $M (better conditioned); reported in $
HOURS_PER_MONTH = 730.0
DAYS_PER_MONTH = 365.25 / 12


class Infeasible(ValueError):
    """No plan meets every constraint; the message names the first one that cannot be met."""


@dataclass
class Option:
    """One hardware option as the programme sees it (per chip; arrays are per month or per class)."""

    name: str
    kind: str                           # "buy" | "rent" | "custom"
    capacity: np.ndarray                # (C,) tokens/s per chip within each class's SLO (0: cannot serve it)
    unit_cost: float = 0.0              # $ per owned chip, server and network share included
    supply: np.ndarray | None = None    # (T,) chips deliverable per month (owned); inf = unlimited
    available: np.ndarray | None = None  # (T,) chips rentable per month (rent); inf = unlimited
    rent_month: float = 0.0             # $ per rented chip-month
    opex_month: float = 0.0             # $ per owned chip-month in service, idle or not
    busy_month: np.ndarray | None = None  # (C,) $ per chip-month above idle when serving class c
    power_w: float = 0.0                # provisioned W per owned chip (accelerator + host share)
    server: int = 1                     # chips per purchase unit
    installed: int = 0                  # chips already in service at the start
    life_months: int = 60
    nre: float = 0.0
    nre_month: int = 0
    fixed_month: float = 0.0            # $ per month from nre_month on if built (the custom chip's software team)
    min_volume: int = 0
    lead_months: int = 0                # for reporting: first month a new order can arrive
    gpu: bool = True                    # catalog hardware (the GPU price shock applies)

    @property
    def owned(self) -> bool:
        return self.kind != "rent"

    @property
    def has_switch(self) -> bool:
        return self.kind == "custom" and (self.nre > 0 or self.min_volume > 0 or self.fixed_month > 0)


@dataclass
class Instance:
    """A whole fleet problem in numbers."""

    classes: list[str]
    months: int
    need: np.ndarray                    # (C, T) tokens/s the fleet must sustain within SLO (peak included)
    tokens_per_month: np.ndarray        # (C, T) tokens actually served each month (for $/Mtok)
    options: list[Option]
    power_cap_w: np.ndarray             # (T,)
    discount_rate: float                # annual
    labels: list[str] = field(default_factory=list)   # month labels for messages
    mip_rel_gap: float = 1e-3
    time_limit_s: float = 60.0
    slo_text: list[str] = field(default_factory=list)   # per class, for messages

    def label(self, t: int) -> str:
        return self.labels[t] if self.labels else f"month {t}"


@dataclass
class Solution:
    """The optimal plan and what it costs, month by month."""

    instance: Instance
    cost: float                         # discounted total, $
    delivered: np.ndarray               # (O, T) chips delivered (owned; 0 for rent)
    in_service: np.ndarray              # (O, T) chips in service (owned) or rented
    route: np.ndarray                   # (O, C, T) chips serving each class
    built: np.ndarray                   # (O,) custom chips built (True for non-custom)
    capex: float                        # discounted purchases net of residual value, and NRE
    opex: float                         # discounted rent, energy, maintenance, facility
    monthly_cost: np.ndarray            # (T,) economic cost per month (capital charge + opex), undiscounted
    usd_per_mtok: np.ndarray            # (T,)
    custom_share: np.ndarray            # (T,) share of served tokens on custom silicon
    binding: list[str]
    solve_s: float
    gap: float

    def capacity_by_option(self) -> np.ndarray:
        """(O, T) chips in service per option (owned) or rented."""
        return self.in_service

    def provisioned_mw(self) -> np.ndarray:
        """(T,) datacenter power the owned chips in service hold (accelerator and host share, provisioned at
        their power limit: the quantity the datacenter's capacity bounds); rented capacity draws none of it."""
        watts = np.array([opt.power_w if opt.owned else 0.0 for opt in self.instance.options])
        return watts @ self.in_service / 1e6


class _Layout:
    """Variable indices of the programme."""

    def __init__(self, inst: Instance) -> None:
        T, C = inst.months, len(inst.classes)
        self.b: dict[int, np.ndarray] = {}      # option -> (T,) var index or -1
        self.r: dict[int, np.ndarray] = {}
        self.z: dict[int, int] = {}
        self.y: dict[int, np.ndarray] = {}      # option -> (C, T) var index or -1
        n = 0
        for o, opt in enumerate(inst.options):
            if opt.owned:
                assert opt.supply is not None
                idx = np.full(T, -1)
                can = opt.supply > 0
                idx[can] = n + np.arange(int(can.sum()))
                n += int(can.sum())
                self.b[o] = idx
            else:
                self.r[o] = n + np.arange(T)
                n += T
        for o, opt in enumerate(inst.options):
            if opt.has_switch:
                self.z[o] = n
                n += 1
        for o, opt in enumerate(inst.options):
            idx = np.full((C, T), -1)
            serve = np.asarray(opt.capacity) > 0
            reach = self._reach(opt, T)
            mask = serve[:, None] & reach[None, :]
            idx[mask] = n + np.arange(int(mask.sum()))
            n += int(mask.sum())
            self.y[o] = idx
        self.n = n

    @staticmethod
    def _reach(opt: Option, T: int) -> np.ndarray:
        """Months in which the option can have chips at all."""
        if not opt.owned:
            assert opt.available is not None
            return opt.available > 0
        assert opt.supply is not None
        if opt.installed > 0:
            return np.ones(T, dtype=bool)
        first = np.flatnonzero(opt.supply > 0)
        out = np.zeros(T, dtype=bool)
        if len(first):
            out[first[0]:] = True
        return out


def _discount(inst: Instance) -> np.ndarray:
    return (1.0 + inst.discount_rate) ** (-np.arange(inst.months + 1) / 12.0)


def _active(d: int, life: int, T: int) -> slice:
    return slice(d, min(d + life, T))


class _Builder:
    """Rows and costs of the programme in COO form (vectorised per option)."""

    def __init__(self, inst: Instance, lay: _Layout, n: int) -> None:
        self.inst, self.lay, self.n = inst, lay, n
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []
        self.lo: list[np.ndarray] = []
        self.hi: list[np.ndarray] = []
        self.m = 0

    def block(self, r: np.ndarray, c: np.ndarray, v: np.ndarray) -> None:
        keep = c >= 0
        self.rows.append(r[keep] + self.m)
        self.cols.append(c[keep])
        self.vals.append(np.asarray(v, dtype=float)[keep] if np.ndim(v) else np.full(int(keep.sum()), float(v)))

    def close(self, lo: np.ndarray, hi: np.ndarray) -> None:
        self.lo.append(np.asarray(lo, dtype=float))
        self.hi.append(np.asarray(hi, dtype=float))
        self.m += len(lo)

    def matrix(self) -> tuple[coo_matrix, np.ndarray, np.ndarray]:
        a = coo_matrix((np.concatenate(self.vals), (np.concatenate(self.rows), np.concatenate(self.cols))),
                       shape=(self.m, self.n))
        return a, np.concatenate(self.lo), np.concatenate(self.hi)


def _in_service_block(b: _Builder, idx: np.ndarray, life: int, T: int, scale: float | np.ndarray) -> None:
    """Rows t (0..T-1) gain scale * b[d] for every delivery d in service at t."""
    for d in np.flatnonzero(idx >= 0):
        ts = np.arange(d, min(d + life, T))
        b.block(ts, np.full(len(ts), idx[d]), scale if np.isscalar(scale) else np.asarray(scale)[ts])


def build(inst: Instance, slack: bool = False) -> tuple[_Layout, np.ndarray, list[LinearConstraint], Bounds,
                                                         np.ndarray, np.ndarray]:
    """The programme's objective, constraints, bounds and integrality; with `slack`, demand may fall short
    at a large price (the diagnosis of an infeasible plan)."""
    T, C = inst.months, len(inst.classes)
    lay = _Layout(inst)
    n_slack = C * T if slack else 0
    n = lay.n + n_slack
    cost = np.zeros(n)
    lo, hi = np.zeros(n), np.full(n, np.inf)
    integ = np.zeros(n)
    df = _discount(inst)
    for o, opt in enumerate(inst.options):
        if opt.owned:
            idx = lay.b[o]
            ds = np.flatnonzero(idx >= 0)
            assert opt.supply is not None
            hi[idx[ds]] = np.where(np.isfinite(opt.supply[ds]), np.floor(opt.supply[ds] / opt.server + 1e-9), np.inf)
            integ[idx[ds]] = 1
            resid = np.clip(1.0 - (T - ds) / opt.life_months, 0.0, 1.0)
            cum = np.concatenate(([0.0], np.cumsum(df[:T])))
            ends = np.minimum(ds + opt.life_months, T)
            opex = opt.opex_month * (cum[ends] - cum[ds])
            cost[idx[ds]] = opt.server * (opt.unit_cost * (df[ds] - resid * df[T]) + opex)
        else:
            assert opt.available is not None
            hi[lay.r[o]] = opt.available
            cost[lay.r[o]] = opt.rent_month * df[:T]
        if o in lay.z:
            integ[lay.z[o]] = 1
            hi[lay.z[o]] = 1
            begin = min(opt.nre_month, T)
            cost[lay.z[o]] = opt.nre * df[begin] + opt.fixed_month * float(np.sum(df[begin:T]))
        yi = lay.y[o]
        busy = np.asarray(opt.busy_month if opt.busy_month is not None else np.zeros(C))
        cc, tt = np.nonzero(yi >= 0)
        cost[yi[cc, tt]] = busy[cc] * df[tt]
    if slack:
        big = 1e3 * max(float(np.max(np.abs(cost))) if n else 1.0, 1.0) * 1e3
        cost[lay.n:] = big
    cost *= SCALE

    b = _Builder(inst, lay, n)
    # demand: sum_o cap[o,c] y[o,c,t] (+ slack) = need[c,t]
    row = np.arange(C * T).reshape(C, T)
    for o, opt in enumerate(inst.options):
        cap = np.asarray(opt.capacity, dtype=float)
        b.block(row.ravel(), lay.y[o].ravel(), np.repeat(cap, T))
    if slack:
        b.block(row.ravel(), lay.n + np.arange(C * T), 1.0)
    b.close(inst.need.ravel(), inst.need.ravel())
    # fleet: sum_c y[o,c,t] <= in service
    for o, opt in enumerate(inst.options):
        rows = np.broadcast_to(np.arange(T), (C, T))
        b.block(rows.ravel(), lay.y[o].ravel(), 1.0)
        if opt.owned:
            _in_service_block(b, lay.b[o], opt.life_months, T, -float(opt.server))
            b.close(np.full(T, -np.inf), np.full(T, float(opt.installed)))
        else:
            b.block(np.arange(T), lay.r[o], -1.0)
            b.close(np.full(T, -np.inf), np.zeros(T))
    # power of owned chips
    base_w = sum(opt.power_w * opt.installed for opt in inst.options if opt.owned)
    for o, opt in enumerate(inst.options):
        if opt.owned:
            _in_service_block(b, lay.b[o], opt.life_months, T, opt.power_w * opt.server)
    b.close(np.full(T, -np.inf), inst.power_cap_w - base_w)
    # custom chips: deliveries only if built; minimum volume if built
    for o, opt in enumerate(inst.options):
        if o not in lay.z:
            continue
        idx = lay.b[o]
        ds = np.flatnonzero(idx >= 0)
        k = len(ds)
        b.block(np.arange(k), idx[ds], 1.0)
        b.block(np.arange(k), np.full(k, lay.z[o]), -hi[idx[ds]])
        b.close(np.full(k, -np.inf), np.zeros(k))
        if opt.min_volume > 0:
            b.block(np.zeros(k, dtype=int), idx[ds], -float(opt.server))
            b.block(np.zeros(1, dtype=int), np.array([lay.z[o]]), float(opt.min_volume))
            b.close(np.array([-np.inf]), np.array([0.0]))
    a, rlo, rhi = b.matrix()
    return lay, cost, [LinearConstraint(a.tocsr(), rlo, rhi)], Bounds(lo, hi), integ, df


def _precheck(inst: Instance) -> None:
    T = inst.months
    for c, name in enumerate(inst.classes):
        if inst.need[c].max() <= 0:
            continue
        if not any(np.asarray(o.capacity)[c] > 0 for o in inst.options):
            slo = f" ({inst.slo_text[c]})" if inst.slo_text else ""
            raise Infeasible(f"demand '{name}': no hardware option meets its SLO{slo}")
    owned = [o for o in inst.options if o.owned and o.power_w > 0]
    if owned:
        smallest = min(owned, key=lambda o: o.power_w * o.server)
        need_w = smallest.power_w * smallest.server
        if inst.power_cap_w.max() < need_w:
            raise Infeasible(f"datacenter.capacity_mw: {inst.power_cap_w.max() / 1e6:g} MW is below one server "
                             f"({smallest.server} x {smallest.name} = {need_w / 1e3:.1f} kW)")
    assert T > 0


def solve(inst: Instance) -> Solution:
    """The cheapest plan; raises `Infeasible` naming the first demand that cannot be met and what limits it.

    HiGHS first solves the programme with only the build decisions integer; its optimum L bounds the whole
    programme from below. It then solves the full programme with each delivery boxed between the floor and
    the ceiling of that answer (a small search, seconds at 30 options x 36 months): a whole-server plan U.
    When (U - L) / U is within `mip_rel_gap` that plan is returned with its proven gap; otherwise, and
    always when the gap asked for is 0, HiGHS solves the unrestricted programme, keeping the better plan."""
    _precheck(inst)
    lay, cost, cons, bounds, integ, df = build(inst)
    t0 = time.perf_counter()
    purchases = np.concatenate([idx[idx >= 0] for idx in lay.b.values()] or [np.zeros(0, dtype=int)]).astype(int)
    relaxed = integ.copy()
    relaxed[purchases] = 0
    rel = _milp(inst, cost, cons, relaxed, bounds, 0.0)
    if rel.x is None:
        raise Infeasible(diagnose(inst) if _infeasible(rel) else f"the solver stopped without a plan: {rel.message}")
    lower = float(rel.fun)
    best_x, best_f = np.asarray(rel.x), lower
    if len(purchases) and integ[purchases].any():
        best_x, best_f = None, math.inf
        x = np.asarray(rel.x)
        box_lo, box_hi = np.array(bounds.lb, dtype=float), np.array(bounds.ub, dtype=float)
        box_lo[purchases] = np.floor(x[purchases] + 1e-7)
        box_hi[purchases] = np.ceil(x[purchases] - 1e-7)
        if inst.mip_rel_gap > 0:
            box = _milp(inst, cost, cons, integ, Bounds(box_lo, box_hi), inst.mip_rel_gap / 2)
            if box.x is not None:
                best_x, best_f = np.asarray(box.x), float(box.fun)
        if best_x is None or best_f - lower > inst.mip_rel_gap * max(abs(best_f), 1e-12):
            res = _milp(inst, cost, cons, integ, bounds, inst.mip_rel_gap)
            if res.x is not None:
                if float(res.fun) < best_f:
                    best_x, best_f = np.asarray(res.x), float(res.fun)
                bound = getattr(res, "mip_dual_bound", None)
                if bound is not None and np.isfinite(bound):
                    lower = max(lower, min(float(bound), best_f))
            elif best_x is None:
                raise Infeasible(diagnose(inst) if _infeasible(res) else
                                 f"the solver stopped without a plan: {res.message}")
    took = time.perf_counter() - t0
    gap = max(best_f - lower, 0.0) / max(abs(best_f), 1e-12)
    return _solution(inst, lay, np.where(np.abs(best_x) < 1e-9, 0.0, best_x), df, took, gap)


def _milp(inst: Instance, cost: np.ndarray, cons: list[LinearConstraint], integ: np.ndarray, bounds: Bounds,
          gap: float) -> Any:
    with _quiet():
        return milp(cost, constraints=cons, integrality=integ, bounds=bounds,
                    options={"mip_rel_gap": gap, "time_limit": inst.time_limit_s, "disp": False})


@contextmanager
def _quiet() -> Iterator[None]:
    """HiGHS' MIP solver prints a debugging line to the C stdout now and then, whatever `disp` says; keep the
    command's output clean by pointing file descriptor 1 at /dev/null while it runs."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError, AttributeError):
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _infeasible(res: Any) -> bool:
    return res.status == 2 or "infeasible" in str(res.message).lower()


def _solution(inst: Instance, lay: _Layout, x: np.ndarray, df: np.ndarray, took: float, gap: float) -> Solution:
    T, C, n_opt = inst.months, len(inst.classes), len(inst.options)
    delivered = np.zeros((n_opt, T))
    in_service = np.zeros((n_opt, T))
    route = np.zeros((n_opt, C, T))
    built = np.ones(n_opt, dtype=bool)
    capex = opex = 0.0
    monthly = np.zeros(T)
    for o, opt in enumerate(inst.options):
        yi = lay.y[o]
        route[o][yi >= 0] = x[yi[yi >= 0]]
        busy = np.asarray(opt.busy_month if opt.busy_month is not None else np.zeros(C))
        busy_t = (route[o] * busy[:, None]).sum(axis=0)
        if o in lay.z:
            built[o] = x[lay.z[o]] > 0.5
            if built[o]:
                start = min(opt.nre_month, T)
                capex += opt.nre * df[start]
                opex += opt.fixed_month * float(np.sum(df[start:T]))
                monthly[start:] += opt.nre * _annuity(inst.discount_rate, opt.life_months) + opt.fixed_month
        if opt.owned:
            idx = lay.b[o]
            ds = np.flatnonzero(idx >= 0)
            servers = np.rint(x[idx[ds]])
            delivered[o, ds] = servers * opt.server
            counts = np.zeros(T + 1)
            np.add.at(counts, ds, delivered[o, ds])
            np.add.at(counts, np.minimum(ds + opt.life_months, T), -delivered[o, ds])
            in_service[o] = opt.installed + np.cumsum(counts)[:T]
            resid = np.clip(1.0 - (T - ds) / opt.life_months, 0.0, 1.0)
            capex += float(np.sum(delivered[o, ds] * opt.unit_cost * (df[ds] - resid * df[T])))
            op_t = in_service[o] * opt.opex_month + busy_t
            opex += float(np.dot(op_t, df[:T]))
            monthly += in_service[o] * opt.unit_cost * _annuity(inst.discount_rate, opt.life_months) + op_t
        else:
            in_service[o] = x[lay.r[o]]
            op_t = in_service[o] * opt.rent_month + busy_t
            opex += float(np.dot(op_t, df[:T]))
            monthly += op_t
    tokens = inst.tokens_per_month.sum(axis=0)
    per_mtok = np.where(tokens > 0, monthly / np.maximum(tokens, 1e-300) * 1e6, np.nan)
    tps = np.array([np.asarray(o.capacity)[:, None] * route[i] for i, o in enumerate(inst.options)])  # (O, C, T)
    custom = np.array([o.kind == "custom" for o in inst.options])
    total = tps.sum(axis=(0, 1))
    share = np.where(total > 0, tps[custom].sum(axis=(0, 1)) / np.maximum(total, 1e-300), 0.0)
    capex, opex = float(capex), float(opex)
    sol = Solution(inst, capex + opex, delivered, in_service, route, built, capex, opex, monthly, per_mtok, share,
                   [], took, gap)
    sol.binding = binding(sol, lay)
    return sol


def _annuity(rate: float, life_months: int) -> float:
    """Monthly capital charge per $ of capex over `life_months` at annual `rate`."""
    r = (1.0 + rate) ** (1.0 / 12.0) - 1.0
    n = max(life_months, 1)
    return r / (1.0 - (1.0 + r) ** (-n)) if r > 0 else 1.0 / n


def _ranges(ts: np.ndarray, inst: Instance) -> str:
    """'2026-01..2026-04, 2026-09' from month indices."""
    if len(ts) == 0:
        return ""
    parts, start, prev = [], ts[0], ts[0]
    for t in list(ts[1:]) + [None]:
        if t is not None and t == prev + 1:
            prev = t
            continue
        parts.append(inst.label(start) if start == prev else f"{inst.label(start)}..{inst.label(prev)}")
        if t is not None:
            start = prev = t
    return ", ".join(parts)


def binding(sol: Solution, lay: _Layout) -> list[str]:
    """Resource limits the plan runs into (supply caps, rental availability, power, volume commitments)."""
    inst = sol.instance
    T = inst.months
    out: list[str] = []
    used_w = np.zeros(T)
    for o, opt in enumerate(inst.options):
        if opt.owned:
            assert opt.supply is not None
            used_w += sol.in_service[o] * opt.power_w
            cap = np.where(np.isfinite(opt.supply), np.floor(opt.supply / opt.server + 1e-9) * opt.server, np.inf)
            tight = np.flatnonzero((cap > 0) & np.isfinite(cap) & (sol.delivered[o] >= cap - 1e-6))
            if len(tight) and sol.built[o]:
                out.append(f"supply cap of {opt.name} ({_ranges(tight, inst)})")
            if opt.min_volume > 0 and sol.built[o] and sol.delivered[o].sum() <= opt.min_volume + opt.server - 1e-6:
                out.append(f"volume commitment of {opt.name} ({opt.min_volume:,} chips)")
        else:
            assert opt.available is not None
            tight = np.flatnonzero(np.isfinite(opt.available) & (opt.available > 0)
                                   & (sol.in_service[o] >= opt.available - 1e-6))
            if len(tight):
                out.append(f"rental availability of {opt.name} ({_ranges(tight, inst)})")
    smallest = min((o.power_w * o.server for o in inst.options if o.owned and o.power_w > 0), default=math.inf)
    tight = np.flatnonzero(inst.power_cap_w - used_w < smallest - 1e-6)
    if len(tight) and math.isfinite(smallest):
        out.append(f"datacenter power ({_ranges(tight, inst)})")
    return out


def diagnose(inst: Instance) -> str:
    """One line naming the first demand that no plan can meet, and the limits that stop it."""
    lay, cost, cons, bounds, integ, _ = build(inst, slack=True)
    res = _milp(inst, cost, cons, np.zeros_like(integ), bounds, 0.0)
    if res.x is None:
        return f"no plan meets every constraint ({res.message})"
    x = np.asarray(res.x)
    T, C = inst.months, len(inst.classes)
    short = x[lay.n:].reshape(C, T)
    rel = short / np.maximum(inst.need, 1e-300)
    bad = np.argwhere(rel > 1e-6)
    if not len(bad):
        return ("no whole-server plan meets every constraint although a fractional one does: check the custom "
                "chips' min_volume against their supply and the datacenter power")
    t = int(bad[:, 1].min())
    c = int(bad[bad[:, 1] == t][np.argmax(rel[bad[bad[:, 1] == t][:, 0], t]), 0])
    limits = []
    for opt in inst.options:
        if np.asarray(opt.capacity)[c] <= 0:
            continue
        if opt.owned:
            assert opt.supply is not None
            first = np.flatnonzero(opt.supply > 0)
            if opt.installed == 0 and (not len(first) or first[0] > t):
                when = inst.label(int(first[0])) if len(first) else "never"
                limits.append(f"lead time of {opt.name} (first delivery {when})")
            elif np.isfinite(opt.supply[: t + 1]).all():
                limits.append(f"supply cap of {opt.name}")
        else:
            assert opt.available is not None
            if np.isfinite(opt.available[t]):
                limits.append(f"rental availability of {opt.name} ({opt.available[t]:,.0f} chips)")
    limits.append(f"datacenter power ({inst.power_cap_w[t] / 1e6:g} MW)")
    return (f"demand '{inst.classes[c]}' in {inst.label(t)} cannot be met within its SLO: {short[c, t]:,.3g} of "
            f"{inst.need[c, t]:,.3g} tokens/s ({rel[c, t]:.2g} of it) are beyond what can be in service then; "
            f"limited by {'; '.join(limits)}")


__all__ = ["DAYS_PER_MONTH", "HOURS_PER_MONTH", "Infeasible", "Instance", "Option", "Solution", "build", "diagnose",
           "solve"]
