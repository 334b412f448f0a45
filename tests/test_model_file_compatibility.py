"""Model files written by earlier fastem versions keep loading.

``tests/data/gaussian_mixture_v1_*.npz`` were written by fastem 0.1.0 before
the package was split into ``fastem._core`` and ``fastem.mixture`` (commit
f520755, format version 1), with the predictions that version made beside
them in JSON. Loading them must give the same model and the same answers.
"""

from __future__ import annotations

import json
import pathlib
import zipfile

import numpy as np
import pytest

from fastem import GaussianMixture

DATA = pathlib.Path(__file__).resolve().parent / "data"
FILES = sorted(DATA.glob("gaussian_mixture_v1_*.npz"))


def _training_data():
    rng = np.random.default_rng(7)
    return np.concatenate([rng.normal(size=(40, 3)), rng.normal(size=(40, 3)) + 5])


def test_the_version_1_files_are_there():
    assert [path.name for path in FILES] == [
        "gaussian_mixture_v1_diag_float32.npz", "gaussian_mixture_v1_full_float64.npz",
    ]


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.stem)
def test_version_1_file_loads_with_the_same_answers(path, tmp_path):
    expected = json.loads(path.with_suffix(".json").read_text())
    model = GaussianMixture.load(path)
    dtype = model.means_.dtype
    X = _training_data().astype(dtype)
    assert dtype == (np.float32 if "float32" in path.name else np.float64)
    np.testing.assert_array_equal(model.means_.astype(np.float64), expected["means"])
    np.testing.assert_array_equal(model.predict(X), expected["predict"])
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(model.score_samples(X[:5]), expected["score_samples_first5"], rtol=rtol)
    # Saved again, the file has the same members and metadata layout.
    again = tmp_path / "again.npz"
    model.save(again)
    with zipfile.ZipFile(path) as old, zipfile.ZipFile(again) as new:
        assert sorted(old.namelist()) == sorted(new.namelist())
        old_meta, new_meta = (json.loads(archive.read("metadata.json")) for archive in (old, new))
    assert old_meta["format_version"] == new_meta["format_version"] == 1
    assert old_meta.keys() == new_meta.keys()
    assert old_meta["params"] == new_meta["params"] and old_meta["arrays"] == new_meta["arrays"]
