"""The commands around the data files: fit --save, predict, --version, help texts, warnings and errors.

Commands run in-process through ``main`` (a subprocess imports Numba again,
about a second); the data are tiny, 3 features, full covariances, k=2: the
kernels the other command-line tests compile.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import warnings

import numpy as np
import pytest

from fastem import GaussianMixture
from fastem.__main__ import build_parser, main


@pytest.fixture(scope="module")
def two_groups():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(40, 3))
    X[20:] += 5.0
    return X


def _frame_csv(path, X, order=("a", "b", "c"), index=True, missing=()):
    """A pandas to_csv file with columns a, b, c (in ``order``) and a text column."""
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame(X, columns=["a", "b", "c"])
    for row, column in missing:
        frame.iloc[row, column] = np.nan
    frame.insert(1, "site", ["north", "south"] * (len(X) // 2))
    frame[[*order[:1], "site", *order[1:]]].to_csv(path, index=index)
    return path


@pytest.mark.parametrize("command", ["fit", "select", "fit-hmm", "predict"])
def test_every_command_reads_a_pandas_file_the_same_way(tmp_path, capsys, two_groups, command):
    path = _frame_csv(tmp_path / "frame.csv", two_groups)
    if command == "predict":
        assert main(["fit", str(path), "--save", str(tmp_path / "m.npz")]) == 0
        capsys.readouterr()
    arguments = {
        "fit": ["fit", str(path)],
        "select": ["select", str(path), "-k", "2", "--models", "full", "--n-init", "1"],
        "fit-hmm": ["fit-hmm", str(path), "--columns", "a,c", "--covariance-type", "diag"],
        "predict": ["predict", str(tmp_path / "m.npz"), str(path)],
    }[command]
    assert main(arguments) == 0
    out, err = capsys.readouterr()
    if command == "fit-hmm":
        assert "fitted 40 x 2 data" in out and "columns: a, c" in out and err == ""
        return
    notes = [
        "fastem: note: ignoring column 1, which has no name in the header: a row index, as pandas' to_csv and "
        "R's write.csv write it (--columns chooses columns).",
        "fastem: note: ignoring text column 'site' (--columns chooses columns).",
    ]
    if command == "predict":
        # A model file that stores the column names chooses the columns by name: no rule leaves any out.
        named = hasattr(GaussianMixture.load(tmp_path / "m.npz"), "feature_names_in_")
        assert err.splitlines() == ([] if named else notes)
        assert set(out.split()) == {"0", "1"} and len(out.split()) == 40
    else:
        assert err.splitlines() == notes
        assert "40 x 3 data from" in out and "columns: a, b, c" in out


def test_fit_save_then_predict_gives_the_fit_labels(tmp_path, capsys, two_groups):
    path = _frame_csv(tmp_path / "frame.csv", two_groups, missing=[(3, 1)])
    model_path, labels_path = tmp_path / "model.npz", tmp_path / "labels.txt"
    assert main(["fit", str(path), "-k", "2", "--save", str(model_path), "--labels", str(labels_path)]) == 0
    assert f"model saved to {model_path}" in capsys.readouterr().out
    assert GaussianMixture.load(model_path).n_features_in_ == 3
    assert main(["predict", str(model_path), str(path)]) == 0
    labels = np.array(capsys.readouterr().out.split(), dtype=int)
    np.testing.assert_array_equal(labels, np.loadtxt(labels_path, dtype=int))
    assert len(set(labels[:20])) == 1 and set(labels[20:]) == {1 - labels[0]}


def test_fit_and_select_save_the_column_names(tmp_path, capsys, monkeypatch, two_groups):
    saved = []
    save = GaussianMixture.save

    def save_recording(self, file):
        saved.append(list(getattr(self, "feature_names_in_", [])))
        save(self, file)

    monkeypatch.setattr(GaussianMixture, "save", save_recording)
    path = _frame_csv(tmp_path / "frame.csv", two_groups)
    assert main(["fit", str(path), "--columns", "c,a,b", "--save", str(tmp_path / "fit.npz")]) == 0
    assert main(["select", str(path), "-k", "2", "--models", "full", "--save", str(tmp_path / "select.npz")]) == 0
    plain = tmp_path / "plain.csv"
    np.savetxt(plain, two_groups, delimiter=",")
    assert main(["fit", str(plain), "--save", str(tmp_path / "plain.npz")]) == 0
    assert saved == [["c", "a", "b"], ["a", "b", "c"], []]


def test_predict_orders_the_columns_by_the_saved_names(tmp_path, capsys, two_groups):
    path = _frame_csv(tmp_path / "frame.csv", two_groups)
    model_path, labels_path = tmp_path / "model.npz", tmp_path / "labels.txt"
    assert main(["fit", str(path), "--save", str(model_path), "--labels", str(labels_path)]) == 0
    if not hasattr(GaussianMixture.load(model_path), "feature_names_in_"):
        pytest.skip("model files do not store feature_names_in_ yet")
    reordered = _frame_csv(tmp_path / "reordered.csv", two_groups, order=("c", "a", "b"), index=False)
    capsys.readouterr()
    assert main(["predict", str(model_path), str(reordered)]) == 0
    np.testing.assert_array_equal(np.array(capsys.readouterr().out.split(), dtype=int), np.loadtxt(labels_path))


def test_predict_uses_a_model_s_feature_names(tmp_path, capsys, monkeypatch, two_groups):
    # What a model file that stores feature_names_in_ gives: load attaches the names.
    path = _frame_csv(tmp_path / "frame.csv", two_groups)
    model_path, labels_path = tmp_path / "model.npz", tmp_path / "labels.txt"
    assert main(["fit", str(path), "--save", str(model_path), "--labels", str(labels_path)]) == 0
    load, predict = GaussianMixture.load, GaussianMixture.predict
    given = []

    def load_with_names(cls, file):
        model = load(file)
        model.feature_names_in_ = np.array(["a", "b", "c"], dtype=object)
        return model

    def predict_recording(self, X):
        given.append(hasattr(self, "feature_names_in_"))
        return predict(self, X)

    monkeypatch.setattr(GaussianMixture, "load", classmethod(load_with_names))
    monkeypatch.setattr(GaussianMixture, "predict", predict_recording)
    reordered = _frame_csv(tmp_path / "reordered.csv", two_groups, order=("c", "a", "b"), index=False)
    capsys.readouterr()
    assert main(["predict", str(model_path), str(reordered)]) == 0
    np.testing.assert_array_equal(np.array(capsys.readouterr().out.split(), dtype=int), np.loadtxt(labels_path))
    assert given == [False]  # the names were used, then removed: predict got a plain array
    partial = tmp_path / "partial.csv"
    partial.write_text("c,a\n1,2\n")
    assert main(["predict", str(model_path), str(partial)]) == 2
    assert "has no column 'b': the model was fitted on columns 'a', 'b', 'c'" in capsys.readouterr().err


def test_predict_proba_writes_a_csv_with_a_header(tmp_path, capsys, two_groups):
    data = tmp_path / "data.csv"
    np.savetxt(data, two_groups, delimiter=",")
    model_path, output = tmp_path / "model.npz", tmp_path / "proba.csv"
    assert main(["fit", str(data), "--save", str(model_path)]) == 0
    assert main(["predict", str(model_path), str(data), "--proba", "-o", str(output)]) == 0
    assert f"probabilities of 40 rows written to {output}" in capsys.readouterr().out
    lines = output.read_text().splitlines()
    assert lines[0] == "p0,p1" and len(lines) == 41
    proba = np.loadtxt(output, delimiter=",", skiprows=1)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(proba, GaussianMixture.load(model_path).predict_proba(two_groups), atol=1e-8)


def test_predict_checks_the_number_of_columns(tmp_path, capsys, two_groups):
    data = tmp_path / "data.csv"
    np.savetxt(data, two_groups, delimiter=",")
    model_path = tmp_path / "model.npz"
    assert main(["fit", str(data), "--save", str(model_path)]) == 0
    assert main(["predict", str(model_path), str(data), "--columns", "1-2"]) == 2
    assert "2 columns of" in capsys.readouterr().err


def test_fit_hmm_sequence_column_by_name_with_text_ids(tmp_path, capsys):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    X[20:40] += 6.0
    ids = ["patient b"] * 20 + ["patient a"] * 20 + ["patient b"] * 20
    path = tmp_path / "visits.csv"
    path.write_text("subject,x,y\n" + "".join(f"{s},{u},{v}\n" for s, (u, v) in zip(ids, X)))
    assert main(["fit-hmm", str(path), "--sequence-column", "subject", "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert "fitted 60 x 2 data in 3 sequence(s)" in out and "columns: x, y" in out
    assert main(["fit-hmm", str(path), "--sequence-column", "0"]) == 2
    assert "--sequence-column 0: positions are 1-based" in capsys.readouterr().err


def test_version(capsys):
    from importlib import metadata

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"fastem {metadata.version('fastem')}\n"


def _parsers(parser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_every_option_states_its_default_and_every_argument_has_help():
    parser = build_parser()
    assert parser.prog == "fastem"
    checked = 0
    for command in _parsers(parser):
        command.format_help()  # expands every %(default)s and %(choices)s
        for action in command._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
                continue
            text = action.help or ""
            if action.option_strings:
                assert "default" in text, f"{command.prog} {action.option_strings[-1]}: {text!r}"
            else:
                assert len(text) > 10, f"{command.prog} {action.dest} has no help"
            checked += 1
    assert checked > 50


def test_positions_are_said_to_be_1_based_in_the_help(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "positions are 1-based" in out and "usage: fastem fit" in out


def test_warnings_print_one_line_and_showwarning_is_restored(tmp_path, capsys, two_groups):
    data = tmp_path / "data.csv"
    np.savetxt(data, two_groups, delimiter=",")
    with warnings.catch_warnings():  # (which restores showwarning itself on leaving: check inside)
        warnings.simplefilter("always")  # the suite's filterwarnings=error would raise it instead
        before = warnings.showwarning
        assert main(["fit", str(data), "--max-iter", "1"]) == 0
        assert warnings.showwarning is before
    err = capsys.readouterr().err
    assert err.startswith("fastem: warning: ConvergenceWarning: ") and err.count("\n") == 1, err
    assert ".py:" not in err and "warn(" not in err


def test_errors_print_one_line_and_exit_2(tmp_path, capsys):
    assert main(["fit", str(tmp_path / "absent.csv")]) == 2
    assert capsys.readouterr().err == f"fastem: error: no such file: {tmp_path / 'absent.csv'}\n"
    with pytest.raises(SystemExit) as exited:
        main(["fit", "data.csv", "--delimiter", "ab"])
    assert exited.value.code == 2 and "fastem fit: error: argument --delimiter" in capsys.readouterr().err


def test_the_installed_script_says_fastem():
    script = shutil.which("fastem")
    if script is None:
        pytest.skip("the fastem console script is not installed")
    result = subprocess.run([script, "--help"], capture_output=True, text=True, check=True)
    assert result.stdout.startswith("usage: fastem ")
