"""`ChipDesign`: a chip that does not exist yet, as the parameters an architect would choose.

Read from YAML (or built in Python). Validation names the offending field and what is allowed, so a
bad design fails with one line instead of a wrong answer. Checks that need the area model (reticle,
interposer) live in `silicon.build`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tokenfab import catalog
from tokenfab.hardware import FABRICS, family_of
from tokenfab.tech import HBM_TYPES, MEMORY_TYPES, NODES, parse_node
from tokenfab.units import PRECISION_BYTES
from tokenfab.yaml_input import load_user_yaml, yaml_problem

PACKAGINGS = ("cowos-s", "cowos-l", "organic")
MATRIX_PRECISIONS = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "fp6", "fp4", "int4")
KNOWN_FAMILIES = ("nvidia-hopper", "nvidia-blackwell", "nvidia-ampere", "nvidia-ada", "amd-cdna2", "amd-cdna3",
                  "amd-cdna4", "intel-gaudi", "google-tpu", "aws-neuron", "other")
PCIE_GT = {3: 8.0, 4: 16.0, 5: 32.0, 6: 64.0}  # GT/s per lane, ~1 bit per transfer after encoding


class DesignError(ValueError):
    """A design that cannot be built; the message names the field and what is allowed."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _node(value: Any) -> str:
    node = parse_node(str(value)) if value is not None else None
    if node is None:
        raise ValueError(f"unknown process node {value!r}: allowed {', '.join(NODES)}")
    return node


class MatrixUnit(_Strict):
    """Matrix (tensor/systolic) units: a rows x cols array of MAC cells per unit."""

    units_per_core: int = Field(1, ge=1)
    rows: int = Field(ge=1)
    cols: int = Field(ge=1)
    precisions: dict[str, float] = Field(description="MACs per cell per clock at each precision, e.g. bf16: 1, fp8: 2")

    @field_validator("precisions")
    @classmethod
    def _precisions(cls, v: dict[str, float]) -> dict[str, float]:
        if not v:
            raise ValueError(f"at least one precision is needed: allowed {', '.join(MATRIX_PRECISIONS)}")
        for name, rate in v.items():
            if name not in MATRIX_PRECISIONS:
                raise ValueError(f"unknown precision {name!r}: allowed {', '.join(MATRIX_PRECISIONS)}")
            if not rate or rate <= 0:
                raise ValueError(f"{name}: MACs per cell per clock must be positive (got {rate!r})")
        return v

    @property
    def base(self) -> str:
        """The widest precision the unit supports: its cells are sized for it."""
        return max(self.precisions, key=lambda p: (PRECISION_BYTES[p], -self.precisions[p]))

    @property
    def cells(self) -> int:
        return self.units_per_core * self.rows * self.cols


class VectorUnit(_Strict):
    lanes_per_core: int = Field(0, ge=0, description="FP32 FMA lanes")
    fp64_lanes_per_core: int = Field(0, ge=0)


class Sram(_Strict):
    per_core_mb: float = Field(0.0, ge=0)
    shared_mb: float = Field(0.0, ge=0)


class Memory(_Strict):
    """Off-die DRAM: HBM stacks on the interposer, or 32-bit LPDDR/GDDR channels on the board."""

    type: str = "none"
    stacks: int = Field(0, ge=0, description="HBM stacks, or 32-bit channels for LPDDR/GDDR")
    gb_per_stack: float = Field(0.0, ge=0, description="GiB per stack (or per channel)")
    gbps_per_pin: float | None = Field(None, gt=0, description="default: the generation's JEDEC rate")

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, v: Any) -> str:
        t = {m.lower(): m for m in MEMORY_TYPES}.get(str(v).strip().lower()) if v is not None else None
        if t is None:
            raise ValueError(f"unknown memory type {v!r}: allowed {', '.join(MEMORY_TYPES)}")
        return t

    @property
    def is_hbm(self) -> bool:
        return self.type in HBM_TYPES


class Chiplets(_Strict):
    count: int = Field(1, ge=1, description="identical compute dies")
    d2d_tbps: float = Field(0.0, ge=0, description="die-to-die bandwidth per die, TB/s each direction")


class IoDie(_Strict):
    """Base/IO dies on an older node holding the shared SRAM, memory PHYs and off-chip links."""

    node: str
    count: int = Field(1, ge=1)
    stacked: bool = Field(False, description="compute dies bonded on top of the IO dies (3D), off the interposer")
    d2d_tbps: float = Field(0.0, ge=0, description="die-to-die bandwidth from each IO die to the other IO dies, "
                            "TB/s each direction")

    _n = field_validator("node", mode="before")(classmethod(lambda cls, v: _node(v)))


class ScaleUp(_Strict):
    links: int = Field(0, ge=0)
    lanes_per_link: int = Field(1, ge=1)
    lane_gbps: float = Field(100.0, gt=0, description="Gb/s per lane, each direction")
    domain: int = Field(1, ge=1, description="chips in one scale-up domain")
    fabric: str = "other"

    @field_validator("fabric")
    @classmethod
    def _fabric(cls, v: str) -> str:
        if v not in FABRICS:
            raise ValueError(f"unknown fabric {v!r}: allowed {', '.join(FABRICS)}")
        return v


class HostLink(_Strict):
    gen: int = 5
    lanes: int = Field(16, ge=0)

    @field_validator("gen")
    @classmethod
    def _gen(cls, v: int) -> int:
        if v not in PCIE_GT:
            raise ValueError(f"PCIe gen {v!r}: allowed {', '.join(map(str, PCIE_GT))}")
        return v


class Reference(_Strict):
    """Published figures of a real chip described as a design (for checking the silicon model)."""

    die_area_mm2: float | None = Field(None, gt=0, description="total silicon area, all dies")
    tdp_w: float | None = Field(None, gt=0)
    tdp_clock_ghz: float | None = Field(None, gt=0, le=6, description="clock measured under a dense matrix load at "
                                        "the TDP, where published (clock_ghz is then a boost clock the chip holds only "
                                        "lightly loaded); the check runs the TDP load at it")
    tdp_scope: Literal["module", "package"] = Field(
        "module", description="what the published TDP covers: 'module' (SXM/OAM/card: the package, its on-package "
        "memory and the module's voltage-regulator loss) or 'package' (the chip package alone, as MTIA v2's 90 W: "
        "no regulator loss, and of off-package DRAM only the package's PHY)")
    source: str
    note: str | None = None


class ChipDesign(_Strict):
    """Everything the silicon model needs to turn a design into area, cost, power and a `Chip`."""

    id: str
    name: str | None = None
    node: str
    clock_ghz: float = Field(gt=0, le=6)
    cores: int = Field(ge=1, description="enabled cores")
    spare_cores: int = Field(0, ge=0, description="extra cores on silicon, fused off for yield")
    matrix: MatrixUnit
    vector: VectorUnit = VectorUnit()
    sram: Sram = Sram()
    memory: Memory = Memory()
    chiplets: Chiplets = Chiplets()
    io_die: IoDie | None = None
    packaging: str = "cowos-s"
    scaleup: ScaleUp = ScaleUp()
    scaleout_gbps: float = Field(0.0, ge=0, description="scale-out NIC bandwidth per chip, Gb/s")
    host: HostLink = HostLink()
    tdp_w: float | None = Field(None, gt=0, description="the designer's power budget; default: the estimate")
    efficiency_family: str | None = Field(None, description="calibrated family whose efficiencies it shares")
    reference: Reference | None = None

    _n = field_validator("node", mode="before")(classmethod(lambda cls, v: _node(v)))

    @field_validator("packaging")
    @classmethod
    def _packaging(cls, v: str) -> str:
        if v not in PACKAGINGS:
            raise ValueError(f"unknown packaging {v!r}: allowed {', '.join(PACKAGINGS)}")
        return v

    @field_validator("efficiency_family")
    @classmethod
    def _family(cls, v: str | None) -> str | None:
        if v is not None and v not in KNOWN_FAMILIES:
            raise ValueError(f"unknown family {v!r}: allowed {', '.join(KNOWN_FAMILIES)}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ChipDesign:
        if self.memory.type != "none" and (self.memory.stacks < 1 or self.memory.gb_per_stack <= 0):
            raise ValueError(f"memory: type {self.memory.type} needs stacks >= 1 and gb_per_stack > 0")
        if self.memory.is_hbm and self.packaging == "organic":
            raise ValueError("packaging: HBM needs an interposer: allowed cowos-s or cowos-l")
        if (self.cores + self.spare_cores) % self.chiplets.count:
            raise ValueError(f"chiplets.count: {self.chiplets.count} must divide cores + spare_cores "
                             f"({self.cores + self.spare_cores})")
        if (self.chiplets.count > 1 or self.io_die) and self.chiplets.d2d_tbps <= 0:
            raise ValueError("chiplets.d2d_tbps: dies of one package need die-to-die bandwidth > 0")
        return self

    @property
    def family(self) -> str:
        return self.efficiency_family or family_of(self.id)

    @property
    def label(self) -> str:
        return self.name or self.id


def describe(err: ValidationError) -> str:
    """One line naming the first bad field and what is allowed."""
    first = err.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "design"
    msg = str(first["msg"]).removeprefix("Value error, ")
    got = first.get("input")
    shown = "" if isinstance(got, dict) else f" (got {got!r})"
    return f"design field {field!r}: {msg}{shown}"


def parse_design(obj: Any, default_id: str = "custom") -> ChipDesign:
    if not isinstance(obj, dict):
        raise DesignError("a design must be a YAML mapping of fields (node, clock_ghz, cores, matrix, ...)")
    data = {"id": default_id, **obj}
    try:
        return ChipDesign.model_validate(data)
    except ValidationError as err:
        raise DesignError(describe(err)) from None


def load_design(path: str | Path) -> ChipDesign:
    """A design from a YAML file; `DesignError` with one line if it cannot be read or is invalid."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as err:
        raise DesignError(f"design {str(path)!r}: {err.strerror}") from None
    try:
        obj = load_user_yaml(text)
    except yaml.YAMLError as err:
        raise DesignError(f"design {str(path)!r} is not valid YAML{yaml_problem(err)}") from None
    return parse_design(obj, default_id=p.stem)


def shipped_designs() -> dict[str, Path]:
    """Shipped example and reference designs by id (file stem)."""
    folder = catalog.design_dir()
    if not folder.is_dir():
        return {}
    return {p.name[: -len(".yaml")]: Path(str(p)) for p in folder.iterdir() if p.name.endswith(".yaml")}


def is_design_ref(spec: str) -> bool:
    """Whether a --hardware value names a design (a YAML path or a shipped design id)."""
    return spec.endswith((".yaml", ".yml")) or Path(spec).is_file() or spec in shipped_designs()


def resolve_design(spec: str) -> ChipDesign:
    shipped = shipped_designs()
    if spec in shipped and not Path(spec).is_file():
        return load_design(shipped[spec])
    return load_design(spec)
