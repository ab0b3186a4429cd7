"""Copy the figure of each notebook's cell tagged ``readme-figure`` to notebooks/figures/.

Run by ``make notebooks`` after executing the notebooks; README.md shows these files.
"""

import base64
from pathlib import Path

import nbformat

here = Path(__file__).resolve().parent
(here / "figures").mkdir(exist_ok=True)
for path in sorted(here.glob("[0-9]*.ipynb")):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if "readme-figure" in cell.get("metadata", {}).get("tags", []):
            png = next(
                o["data"]["image/png"]
                for o in cell.get("outputs", [])
                if "image/png" in o.get("data", {})
            )
            (here / "figures" / f"{path.stem}.png").write_bytes(base64.b64decode(png))
            break
    else:
        raise SystemExit(f"{path.name}: no cell tagged readme-figure with an image")
