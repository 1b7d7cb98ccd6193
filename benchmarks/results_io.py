"""Where benchmark results go: ``benchmarks/results/NAME.json`` and ``NAME.md`` (with machine,
torch version and date), plus PNG plots beside them."""
from __future__ import annotations

import datetime
import json
from pathlib import Path

import torch

from .common import machine_header

RESULTS = Path(__file__).parent / "results"


def write_results(name: str, title: str, columns: list[str], rows: list[dict], notes: list[str],
                  extra: dict | None = None) -> Path:
    """The rows as a Markdown table and JSON record; returns the Markdown path."""
    RESULTS.mkdir(exist_ok=True)
    header = machine_header(title).splitlines()
    date = datetime.date.today().isoformat()
    record = {"benchmark": name, "machine": header[1:], "date": date, "torch": torch.__version__,
              "columns": columns, "rows": rows, "notes": notes, **(extra or {})}
    (RESULTS / f"{name}.json").write_text(json.dumps(record, indent=2, default=str) + "\n")

    def cell(value):
        if isinstance(value, float):
            return f"{value:,.4f}" if abs(value) < 10 else f"{value:,.1f}"
        return f"{value:,}" if isinstance(value, int) else str(value)

    lines = [header[0], "", *[f"- {line}" for line in header[1:]], f"- date {date}", "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c, "-")) for c in columns) + " |" for row in rows]
    lines += ["", *notes]
    path = RESULTS / f"{name}.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def pyplot():
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("this benchmark's plots need matplotlib: pip install 'pruner-iface[plot]' "
                         "(make bench installs it)") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
