"""python -m fastem demo / fit."""

from __future__ import annotations

import numpy as np

from fastem.__main__ import main


def test_demo_prints_the_recovered_mixture(capsys):
    assert main(["demo", "--n-samples", "20000"]) == 0
    out = capsys.readouterr().out
    assert "converged: True" in out
    assert "0.5" in out and "component" in out


def test_fit_a_csv_file_and_write_labels(tmp_path, capsys, blobs):
    path = tmp_path / "data.csv"
    np.savetxt(path, blobs, delimiter=",")
    labels_path = tmp_path / "labels.txt"
    assert main(["fit", str(path), "-k", "3", "--labels", str(labels_path)]) == 0
    assert "BIC" in capsys.readouterr().out
    labels = np.loadtxt(labels_path)
    assert labels.shape == (len(blobs),) and set(np.unique(labels)) <= {0, 1, 2}


def test_fit_reports_bad_input_without_a_traceback(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("1,2\n3,nan\n4,5\n")
    assert main(["fit", str(path)]) == 2
    assert "NaN" in capsys.readouterr().err
