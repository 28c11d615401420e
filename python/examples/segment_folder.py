"""Segments every image of a folder with one tessel method and plots the overlays with matplotlib.

    /usr/bin/python3 python/examples/segment_folder.py photos/ --method slic --out overlays.png
Run it as a script or cell by cell (each '# %%' starts a notebook cell).
"""
# %%
import argparse
import pathlib

import matplotlib

matplotlib.use("Agg")  # writes a file; drop this line in a notebook
import matplotlib.pyplot as plt
from skimage.segmentation import mark_boundaries

import tessel

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("folder", type=pathlib.Path)
parser.add_argument("--method", default="slic", choices=[m["name"] for m in tessel.methods()])
parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("overlays.png"))
args = parser.parse_args()

# %% Segment each image; the report says how long each took and how many segments it found.
suffixes = {".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm"}
files = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in suffixes)
if not files:
    raise SystemExit(f"no images in {args.folder}")
results = []
for path in files:
    image = tessel.io.read_image(path)
    labels, report = tessel.segment(image, method=args.method, return_report=True)
    print(f"{path.name}: {report['segments']} segments in {report['seconds']['total']:.2f} s")
    results.append((path.name, image, labels))

# %% One panel per image: the segment boundaries over the photo.
cols = min(4, len(results))
rows = (len(results) + cols - 1) // cols
fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
for ax in axes.flat:
    ax.axis("off")
for ax, (name, image, labels) in zip(axes.flat, results):
    ax.imshow(mark_boundaries(image, labels))
    ax.set_title(f"{name}: {labels.max() - labels.min() + 1} labels", fontsize=9)
fig.tight_layout()
fig.savefig(args.out, dpi=100)
print(f"wrote {args.out}")
