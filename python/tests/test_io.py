"""tessel.io.read_image: what the C++ reader decodes, and OSError for bad files."""
import numpy as np
import pytest

import tessel
from conftest import scene

Image = pytest.importorskip("PIL.Image", reason="Pillow is not installed: no PNG writer for the test files")


def test_reads_png_losslessly(tmp_path):
    img = scene(21, 34)
    Image.fromarray(img).save(tmp_path / "a.png")
    got = tessel.io.read_image(tmp_path / "a.png")
    assert got.dtype == np.uint8 and got.shape == (21, 34, 3)
    np.testing.assert_array_equal(got, img)
    gray = img[:, :, 0]
    Image.fromarray(gray).save(tmp_path / "g.png")
    assert tessel.io.read_image(tmp_path / "g.png", channels=0).shape == (21, 34, 1)
    np.testing.assert_array_equal(tessel.io.read_image(str(tmp_path / "g.png"), channels=0)[:, :, 0], gray)


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        tessel.io.read_image(tmp_path / "missing.png")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(OSError, match="tessel::io::read_image"):
        tessel.io.read_image(tmp_path / "text.png")
    Image.fromarray(scene(64, 64)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(OSError):
        tessel.io.read_image(tmp_path / "cut.png")
    with pytest.raises(ValueError, match="channels"):
        tessel.io.read_image(tmp_path / "full.png", channels=2)
