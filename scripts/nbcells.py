"""Append markdown/code cells to a chapter notebook, keeping its template cells first.

Used by authors while writing chapters:  python scripts/nbcells.py NOTEBOOK SPEC.py
where SPEC.py defines CELLS = [("md", "..."), ("code", "..."), ...] and optionally INTRO (markdown
that replaces the title cell's body) — everything after the three template cells is replaced.
"""

from __future__ import annotations

import json
import runpy
import sys
import uuid
from pathlib import Path


def main(nb_path: str, spec_path: str) -> None:
    spec = runpy.run_path(spec_path)
    path = Path(nb_path)
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = nb["cells"]
    first_code = next(i for i, c in enumerate(cells) if c["cell_type"] == "code")
    head = cells[: first_code + 3]
    if "INTRO" in spec:
        head[0]["source"] = spec["INTRO"].strip() + "\n"
    body = []
    for kind, src in spec["CELLS"]:
        cell = {
            "cell_type": "markdown" if kind == "md" else "code",
            "id": uuid.uuid4().hex[:8],
            "metadata": {},
            "source": src.strip("\n"),
        }
        if kind != "md":
            cell["execution_count"] = None
            cell["outputs"] = []
        body.append(cell)
    nb["cells"] = head + body
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{path}: {len(head)} template + {len(body)} cells")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
