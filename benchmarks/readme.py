"""`python -m benchmarks readme`: rewrite README.md's results section (between its
`<!-- results:start -->` and `<!-- results:end -->` markers) from benchmarks/results/: each
NAME.md table as it is, and the scalar figures of each JSON record that has no table."""
from __future__ import annotations

import json
from pathlib import Path

from .results_io import RESULTS

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def section() -> str:
    parts = []
    for path in sorted(RESULTS.glob("*.json")):
        table = path.with_suffix(".md")
        if table.exists():
            text = table.read_text().strip().splitlines()
            parts.append("\n".join(["### " + text[0].lstrip("# ")] + text[1:]))
            plots = sorted(p.name for p in RESULTS.glob(f"{path.stem}_*.png"))
            if plots:
                parts.append("Plots: " + ", ".join(f"[{p}](benchmarks/results/{p})" for p in plots))
            continue
        record = json.loads(path.read_text())
        scalars = [f"- {k}: {v}" for k, v in record.items() if isinstance(v, (int, float, str)) and k != "benchmark"]
        machine = record.get("machine", [])
        parts.append("\n".join([f"### {record.get('benchmark', path.stem)}", *[f"- {m}" for m in machine], *scalars]))
    return "\n\n".join(parts)


def main(argv) -> None:
    text = README.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"README.md lacks the {START} / {END} markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n{section()}\n{END}{tail}")
    print(f"rewrote the results section of {README} from {RESULTS}")
