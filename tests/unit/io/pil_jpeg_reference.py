"""Fixture for tests/unit/io/test_image_conformance.cpp: the pixels PIL decodes from every BSDS500
val JPEG, as width, height and a 64-bit FNV-1a hash of the RGB bytes (row-major, interleaved).

Run once with a Python that has PIL (Debian: /usr/bin/python3 with python3-pil):
    /usr/bin/python3 tests/unit/io/pil_jpeg_reference.py ../shared/data/bsds500/val \
        > tests/unit/io/pil_jpeg_checksums.txt
PIL decodes with libjpeg's defaults (islow DCT, fancy upsampling) and converts to RGB only when
the file is not already RGB; the test expects tessel::io::read_image(path) to match byte for byte.
"""
import os
import sys

import PIL
from PIL import Image, features


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def main() -> None:
    folder = sys.argv[1]
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(".jpg"))
    print(f"# PIL {PIL.__version__}, libjpeg-turbo {features.version('libjpeg_turbo')}; "
          f"{len(names)} JPEGs from {os.path.basename(os.path.normpath(folder))}")
    print("# file width height fnv1a64(RGB bytes)")
    for name in names:
        with Image.open(os.path.join(folder, name)) as im:
            im.load()
            rgb = im if im.mode == "RGB" else im.convert("RGB")
            print(f"{name} {rgb.width} {rgb.height} {fnv1a64(rgb.tobytes()):016x}")


if __name__ == "__main__":
    main()
