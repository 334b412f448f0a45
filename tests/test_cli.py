"""python -m fastem demo / fit / fit-hmm."""

from __future__ import annotations

import re

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
    path.write_text("1,2\n3,inf\n4,5\n")
    assert main(["fit", str(path)]) == 2
    assert "infinity" in capsys.readouterr().err


def test_fit_a_file_with_missing_values(tmp_path, capsys, blobs):
    X = blobs.copy()
    X[::5, 1] = np.nan
    path = tmp_path / "data.csv"
    np.savetxt(path, X, delimiter=",")
    assert main(["fit", str(path), "-k", "3"]) == 0
    assert "BIC" in capsys.readouterr().out


def test_fit_hmm_with_a_sequence_column(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 2))
    X[50:100] += 6.0
    ids = np.repeat([3, 1, 3], 50)  # a repeated id still starts a new sequence where it changes
    path = tmp_path / "sequences.csv"
    np.savetxt(path, np.column_stack([ids, X]), delimiter=",")
    states_path, model_path = tmp_path / "states.txt", tmp_path / "model.npz"
    # --sequence-column counts columns from 1, like --columns and the error messages (it was 0-based once).
    arguments = ["fit-hmm", str(path), "--sequence-column", "1", "-k", "2", "--states", str(states_path),
                 "--save", str(model_path)]
    assert main(arguments) == 0
    out = capsys.readouterr().out
    assert "in 3 sequence(s)" in out and "transition matrix" in out and "Viterbi log-probability" in out
    states = np.loadtxt(states_path)
    assert states.shape == (150,)
    assert len(set(states[:50])) == 1 and set(states[50:100]) == {1 - states[0]}
    from fastem import GaussianHMM

    model = GaussianHMM.load(model_path)
    np.testing.assert_array_equal(model.predict(X, [50, 50, 50]), states)


def test_fit_hmm_reports_bad_input_without_a_traceback(tmp_path, capsys):
    path = tmp_path / "one.csv"
    np.savetxt(path, np.ones((10, 2)), delimiter=",")
    assert main(["fit-hmm", str(path), "--sequence-column", "4"]) == 2
    assert "--sequence-column 4 is outside the file's 2 columns" in capsys.readouterr().err


def test_select_prints_the_table_and_the_choice(tmp_path, capsys, blobs):
    path = tmp_path / "data.csv"
    path.write_text("a,b\n" + "\n".join(",".join(f"{v:.6f}" for v in row) for row in blobs) + "\n")
    assert main(["select", str(path), "-k", "1-4", "--models", "full,VEV,EII", "--n-init", "2"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("BIC (lower is better)"))
    assert lines[header + 1].split() == ["model", "1", "2", "3", "4"]
    assert [line.split()[0] for line in lines[header + 2:header + 5]] == ["full", "VEV", "EII"]
    starred = [line for line in lines[header + 2:header + 5] if "*" in line]
    assert len(starred) == 1 and starred[0].count("*") == 1
    model, count = re.search(r"chosen: (\w+) with (\d) components", out).groups()
    column = next(i for i, cell in enumerate(starred[0].split()) if cell.endswith("*"))
    assert starred[0].split()[0] == model and column == int(count)


def test_select_and_fit_write_pictures(tmp_path, capsys, blobs):
    import pytest

    pytest.importorskip("matplotlib")
    path = tmp_path / "data.csv"
    np.savetxt(path, blobs[:300], delimiter=",")
    picture = tmp_path / "bic.png"
    assert main(["select", str(path), "-k", "3", "--models", "diag", "--plot", str(picture)]) == 0
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "bic-mixture.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fit_picture = tmp_path / "fit.png"
    assert main(["fit", str(path), "-k", "3", "--plot", str(fit_picture)]) == 0
    assert fit_picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_select_rejects_a_bad_range(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["select", "x.csv", "-k", "0-3"])
    assert "positive integers" in capsys.readouterr().err
