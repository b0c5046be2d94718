"""`tokenfab results`: list the stored runs, show one, or export one run's points (a thin command over
`store`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from tokenfab.cli.io import JsonOpt, check_output, fail, out, print_json
from tokenfab.cli.options import STORE_DEFAULT, StoreOpt


def results(
    run: Annotated[str | None, typer.Argument(help="run id (or a prefix) to show or export")] = None,
    store: StoreOpt = STORE_DEFAULT,
    export: Annotated[Path | None, typer.Option(help="write the run's points to .parquet or .csv")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List stored runs, show one, or export one run's points."""
    from rich.table import Table

    from tokenfab.store import Store, StoreError
    check_output("--export", export)
    db = Store(store)
    try:
        db.check()
    except StoreError as e:
        fail(str(e))
    if run is None:
        if export is not None:
            fail("--export needs a run id: tokenfab results RUN --export FILE")
        runs = [{**_run_fields(r), "best": _best_label(r)} for r in db.runs()]
        if as_json:
            print_json({"store": str(store), "runs": runs})
            return
        table = Table("id", "kind", "status", "created", "points", "best")
        for r in runs:
            table.add_row(r["id"], r["kind"], r["status"], r["created"], str(r["points"]), r["best"])
        out.print(table)
        return
    try:
        rec = db.run(run)
        if export is not None:
            db.export(rec["id"], export)
    except StoreError as e:
        fail(str(e))
    if as_json:
        print_json({**_run_fields(rec), **({"export": str(export)} if export is not None else {})})
    elif export is not None:
        out.print(f"wrote {rec['points']} points of run {rec['id']} to {export}")
    else:
        out.print_json(json.dumps(_run_fields(rec)))


def _run_fields(rec: dict[str, Any]) -> dict[str, Any]:
    """What `results` says of a run: id, kind, status, when it was created and finished, its stored points."""
    return {k: rec[k] for k in ("id", "kind", "status", "created", "finished", "points")}


def _best_label(rec: dict[str, Any]) -> str:
    """A design run's recommended custom chip ('' for a run without one, such as a fleet plan)."""
    s = rec.get("summary") or {}
    return s.get("custom", {}).get("label", "") if isinstance(s, dict) else ""
