"""The command line's data files (fastem.tables): one test per shape users write.

Files are written the way users produce them (pandas' to_csv, R's write.csv
and write.table, Excel's "CSV UTF-8", np.savetxt, pyarrow); each test checks
the array read (values and NaN positions) and the column names, and the
errors check the 1-based line, the 1-based column and its name.
"""

from __future__ import annotations

import gzip
import sys

import numpy as np
import pytest

from fastem.__main__ import main
from fastem.tables import read_table

NAN = np.nan


def _write(tmp_path, name: str, text: str, encoding: str = "utf-8"):
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


def _read(path, **options):
    table = read_table(path, **options)
    assert table.data.dtype == np.float64 and table.data.flags.c_contiguous
    return table


def _error(path, **options) -> str:
    with pytest.raises(ValueError) as caught:
        read_table(path, **options)
    return str(caught.value)


# -- headers -------------------------------------------------------------------


def test_a_header_line_is_detected(tmp_path):
    path = _write(tmp_path, "data.csv", "height,weight\n1.5,60\n1.7,72.5\n")
    table = _read(path)
    np.testing.assert_array_equal(table.data, [[1.5, 60], [1.7, 72.5]])
    assert table.names == ["height", "weight"] and table.notes == []


def test_a_first_row_with_a_missing_value_is_data_not_a_header(tmp_path):
    path = _write(tmp_path, "data.csv", "1,,3\n4,5,6\n")
    table = _read(path)
    np.testing.assert_array_equal(table.data, [[1, NAN, 3], [4, 5, 6]])
    assert table.names is None
    path = _write(tmp_path, "na.csv", "NA,2\n3,4\n")
    np.testing.assert_array_equal(_read(path).data, [[NAN, 2], [3, 4]])


def test_numeric_names_need_the_header_option(tmp_path):
    path = _write(tmp_path, "years.csv", "2019,2020\n1,2\n3,4\n")
    assert _read(path).data.shape == (3, 2) and _read(path).names is None
    table = _read(path, header=True)
    assert table.names == ["2019", "2020"]
    np.testing.assert_array_equal(table.data, [[1, 2], [3, 4]])
    # A name among numbers is a number's mistake: the message says how to read it as a header.
    message = _error(_write(tmp_path, "mixed.csv", "x,2019\n1,2\n"))
    assert "line 1, column 1: 'x' is not a number" in message and "pass --header" in message


def test_no_header_reads_the_first_line_as_data(tmp_path):
    path = _write(tmp_path, "data.csv", "a,b\n1,2\n")
    message = _error(path, header=False)
    assert "line 1, column 1: 'a' is not a number" in message


# -- row-index columns ---------------------------------------------------------


def test_a_pandas_to_csv_file_drops_its_index_column(tmp_path, capsys):
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"x": [0.5, 1.5, NAN, 3.5], "y": [1.0, 2.0, 3.0, 4.0]}, index=[10, 11, 12, 13])
    path = tmp_path / "frame.csv"
    frame.to_csv(path)
    assert path.read_text().startswith(",x,y\n10,0.5,1.0\n")
    table = _read(path)
    np.testing.assert_array_equal(table.data, frame.to_numpy())
    assert table.names == ["x", "y"]
    assert len(table.notes) == 1 and "row index" in table.notes[0]
    # Selected explicitly, the index is a column like any other (positions count it).
    np.testing.assert_array_equal(_read(path, columns="1,3").data[:, 0], [10, 11, 12, 13])


def test_r_write_csv_quoted_names_and_row_names(tmp_path):
    # write.csv(data.frame(x = c(1.5, NA), y = c(2, 3), species = c("a", "b")))
    path = _write(tmp_path, "r.csv", '"","x","y","species"\n"1",1.5,2,"a"\n"2",NA,3,"b"\n')
    table = _read(path)
    np.testing.assert_array_equal(table.data, [[1.5, 2], [NAN, 3]])
    assert table.names == ["x", "y"]
    assert "row index" in table.notes[0] and "ignoring text column 'species'" in table.notes[1]


def test_r_write_table_header_one_field_short(tmp_path):
    # write.table(data.frame(x = c(1.5, 3), y = c(2, NA))): space-separated, no header field above the row names.
    path = _write(tmp_path, "r.txt", '"x" "y"\n"1" 1.5 2\n"2" 3 NA\n')
    table = _read(path)
    np.testing.assert_array_equal(table.data, [[1.5, 2], [3, NAN]])
    assert table.names == ["x", "y"] and "row index" in table.notes[0]


# -- text columns --------------------------------------------------------------


def test_a_text_column_is_left_out_with_a_note(tmp_path, capsys):
    path = _write(tmp_path, "iris.csv", "length,species,width\n5.1,setosa,3.5\n6.3,,2.9\n7.0,virginica,3.2\n")
    table = _read(path)
    np.testing.assert_array_equal(table.data, [[5.1, 3.5], [6.3, 2.9], [7.0, 3.2]])
    assert table.names == ["length", "width"]
    assert table.notes == ["ignoring text column 'species' (--columns chooses columns)."]


def test_a_selected_text_column_is_an_error_naming_it(tmp_path):
    path = _write(tmp_path, "iris.csv", "length,species\n5.1,setosa\n6.3,virginica\n")
    message = _error(path, columns="length,species")
    assert "column 2 ('species') is not numeric: 'setosa' on line 2" in message


# -- missing values and bad values ---------------------------------------------


def test_missing_value_markers_read_as_nan(tmp_path):
    text = "a,b,c\n1,,NA\nNaN,2,nan\nN/A,null,3\n<NA>,4,NULL\n5,6,7\n"
    table = _read(_write(tmp_path, "missing.csv", text))
    expected = [[1, NAN, NAN], [NAN, 2, NAN], [NAN, NAN, 3], [NAN, 4, NAN], [5, 6, 7]]
    np.testing.assert_array_equal(table.data, expected)
    assert table.names == ["a", "b", "c"]


def test_a_pandas_nullable_column_written_with_its_na_marker(tmp_path):
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"n": pandas.array([1, None, 3], dtype="Int64"), "x": [0.5, 1.5, 2.5]})
    path = tmp_path / "nullable.csv"
    frame.to_csv(path, index=False, na_rep="<NA>")
    np.testing.assert_array_equal(_read(path).data, [[1, 0.5], [NAN, 1.5], [3, 2.5]])


def test_a_bad_value_names_its_line_column_name_and_text(tmp_path):
    # Line numbers count every line of the file: the comment, the header and the blank line.
    path = _write(tmp_path, "bad.csv", "# measured 2024\nx,y,z\n1,2,3\n\n4,oops,6\n7,8,9\n")
    message = _error(path)
    assert "bad.csv, line 5, column 2 ('y'): 'oops' is not a number" in message
    assert "missing-value marker" in message
    path = _write(tmp_path, "bad_no_header.csv", "1,2\n3,4\n5,6x\n")
    assert "bad_no_header.csv, line 3, column 2: '6x' is not a number" in _error(path)


def test_infinity_reaches_the_estimator_check(tmp_path):
    np.testing.assert_array_equal(_read(_write(tmp_path, "inf.csv", "1,inf\n2,3\n")).data, [[1, np.inf], [2, 3]])


# -- delimiters ----------------------------------------------------------------


def test_a_semicolon_file(tmp_path):
    table = _read(_write(tmp_path, "excel.csv", "a;b;c\n1.5;2;\n3;4;5\n"))
    np.testing.assert_array_equal(table.data, [[1.5, 2, NAN], [3, 4, 5]])
    assert table.names == ["a", "b", "c"]


def test_a_decimal_comma_file_has_an_understandable_error(tmp_path):
    message = _error(_write(tmp_path, "comma.csv", "a;b\n1,5;2,5\n3,0;4,5\n"))
    assert "line 2, column 1 ('a'): '1,5' is not a number" in message and "decimal comma" in message
    # Without a header, ',' splits every line evenly too: ';' is preferred.
    message = _error(_write(tmp_path, "comma_no_header.csv", "1,5;2,5\n3,0;4,5\n"))
    assert "line 1, column 1: '1,5' is not a number" in message and "decimal comma" in message


def test_a_tab_separated_file_with_empty_fields(tmp_path):
    for name in ("data.tsv", "data.txt"):
        table = _read(_write(tmp_path, name, "x\ty\tlabel\n1.5\t\ta b\n2\t3\tc, d\n"))
        np.testing.assert_array_equal(table.data, [[1.5, NAN], [2, 3]])
        assert table.names == ["x", "y"]


def test_a_whitespace_txt_file(tmp_path):
    X = np.array([[1.5, -2.0, 3.25], [4.0, 5.5, -6.0]])
    path = tmp_path / "savetxt.txt"
    np.savetxt(path, X)  # space-separated, np.loadtxt's default
    np.testing.assert_array_equal(_read(path).data, X)
    aligned = _write(tmp_path, "aligned.txt", "  x      y\n 1.0   -2.0\n10.5\t  NA\n3.5\t4\n")
    table = _read(aligned)
    np.testing.assert_array_equal(table.data, [[1, -2], [10.5, NAN], [3.5, 4]])
    assert table.names == ["x", "y"]


def test_the_delimiter_option(tmp_path):
    path = _write(tmp_path, "pipes.dat", "a|b\n1|2\n3|\n")
    np.testing.assert_array_equal(_read(path, delimiter="|").data, [[1, 2], [3, NAN]])


def test_a_byte_order_mark_and_quoted_names(tmp_path):
    path = _write(tmp_path, "excel.csv", '"a,b",c\n1,2\n3,4\n', encoding="utf-8-sig")
    assert path.read_bytes()[:3] == b"\xef\xbb\xbf"
    table = _read(path)
    assert table.names == ["a,b", "c"]
    np.testing.assert_array_equal(table.data, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(_read(path, columns='c,"a,b"').data, [[2, 1], [4, 3]])


def test_a_gzipped_csv(tmp_path):
    path = tmp_path / "data.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("a,b\n1,2\n3,NA\n")
    np.testing.assert_array_equal(_read(path).data, [[1, 2], [3, NAN]])


# -- empty and ragged files ----------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("", "empty.csv is empty"),
    ("\n\n# only a comment\n", "holds no data"),
    ("a,b,c\n", "has a header line (line 1) and no data rows"),
])
def test_empty_files_are_clear_errors_without_python_warnings(tmp_path, capsys, text, expected):
    path = _write(tmp_path, "empty.csv", text)
    assert expected in _error(path)
    # Through the command line: one line, no warning (the test suite turns warnings into errors).
    assert main(["fit", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fastem: error: ") and expected in err and err.count("\n") == 1


def test_a_ragged_row_names_its_line(tmp_path):
    path = _write(tmp_path, "ragged.csv", "a,b,c\n1,2,3\n\n4,5\n")
    message = _error(path)
    assert "ragged.csv, line 4: 2 fields where the header (line 1) has 3" in message
    path = _write(tmp_path, "ragged_no_header.csv", "1,2\n3,4,5\n")
    assert "line 2: 3 fields where line 1 has 2" in _error(path)


# -- choosing columns ----------------------------------------------------------


def test_columns_by_name_position_and_range_in_the_given_order(tmp_path):
    path = _write(tmp_path, "wide.csv", "a,b,c,d,e\n1,2,3,4,5\n6,7,8,9,10\n")
    table = _read(path, columns="e,2-3,1")
    np.testing.assert_array_equal(table.data, [[5, 2, 3, 1], [10, 7, 8, 6]])
    assert table.names == ["e", "b", "c", "a"]
    assert "positions are 1-based" in _error(path, columns="0")
    assert "--columns 6 is outside the file's 5 columns" in _error(path, columns="1,6")
    assert "has no column 'height'" in _error(path, columns="height")
    assert "Did you mean 'alpha'?" in _error(_write(tmp_path, "named.csv", "alpha,beta\n1,2\n"), columns="alpah")
    assert "selects column 1 ('a') twice" in _error(path, columns="a,1")
    no_header = _write(tmp_path, "plain.csv", "1,2\n3,4\n")
    np.testing.assert_array_equal(_read(no_header, columns="2").data, [[2], [4]])
    assert "no header line" in _error(no_header, columns="a")


def test_a_model_s_feature_names_choose_and_order_columns(tmp_path):
    path = _write(tmp_path, "data.csv", "c,a,b,note\n3,1,2,x\n6,4,5,y\n")
    table = _read(path, feature_names=["a", "b", "c"])
    np.testing.assert_array_equal(table.data, [[1, 2, 3], [4, 5, 6]])
    message = _error(path, feature_names=["a", "z", "y"])
    assert "has no column 'z', 'y'" in message and "fitted on columns 'a', 'z', 'y'" in message


# -- binary formats ------------------------------------------------------------


def test_npy_files(tmp_path):
    X = np.arange(6.0).reshape(3, 2)
    np.save(tmp_path / "x.npy", X.astype(np.float32))
    table = _read(tmp_path / "x.npy")
    np.testing.assert_array_equal(table.data, X)
    assert table.names is None
    np.save(tmp_path / "one.npy", np.array([1.0, NAN]))
    np.testing.assert_array_equal(_read(tmp_path / "one.npy").data, [[1], [NAN]])
    records = np.array([(1.0, 2), (3.0, 4)], dtype=[("u", "f8"), ("v", "i4")])
    np.save(tmp_path / "records.npy", records)
    table = _read(tmp_path / "records.npy", columns="v")
    assert table.names == ["v"]
    np.testing.assert_array_equal(table.data, [[2], [4]])
    assert "--header applies to text files" in _error(tmp_path / "x.npy", header=True)


def test_parquet_files(tmp_path):
    pandas = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    frame = pandas.DataFrame({"x": [1.5, NAN, 3.0], "n": pandas.array([1, None, 3], dtype="Int64"),
                              "species": ["a", "b", None]}, index=[7, 8, 9])
    path = tmp_path / "frame.parquet"
    frame.to_parquet(path)  # a non-default index is stored as a column
    table = _read(path)
    np.testing.assert_array_equal(table.data, [[1.5, 1], [NAN, NAN], [3, 3]])
    assert table.names == ["x", "n"]
    assert "index column '__index_level_0__'" in table.notes[0] and "'species'" in table.notes[1]
    message = _error(path, columns="species")
    assert "column 3 ('species') is not numeric: it holds" in message and "string values" in message


def test_parquet_without_pyarrow_names_the_extra(tmp_path, monkeypatch, capsys):
    path = tmp_path / "data.parquet"
    path.write_bytes(b"PAR1" + bytes(16) + b"PAR1")
    for module in ("pyarrow", "pyarrow.parquet", "pandas"):
        monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
    assert main(["fit", str(path)]) == 2
    assert 'needs pyarrow: pip install "fastem[parquet]"' in capsys.readouterr().err


def test_other_files_are_named(tmp_path):
    path = tmp_path / "book.xlsx"
    path.write_bytes(b"PK\x03\x04" + bytes(20))
    assert "an Excel workbook: save it as CSV" in _error(path)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("a,b\n1,2\nbé,3\n".encode("latin-1"))
    assert "is not UTF-8 text" in _error(latin)


# -- pandas' default column names, trailing delimiters, named indexes, damaged files ----------


def test_a_dataframe_built_from_an_array_written_with_its_index(tmp_path):
    pandas = pytest.importorskip("pandas")
    array = np.array([[0.5, 1.5, 2.5], [3.5, 4.5, 5.5], [6.5, 7.5, 8.5]])
    path = tmp_path / "frame.csv"
    pandas.DataFrame(array).to_csv(path)
    assert path.read_text().startswith(",0,1,2\n0,0.5,")
    table = _read(path)
    np.testing.assert_array_equal(table.data, array)
    assert table.names == ["0", "1", "2"] and "row index" in table.notes[0]


def test_a_dataframe_built_from_an_array_written_without_its_index(tmp_path):
    pandas = pytest.importorskip("pandas")
    array = np.array([[0.5, 1.5], [3.5, 4.5]])
    path = tmp_path / "frame.csv"
    pandas.DataFrame(array).to_csv(path, index=False)
    assert path.read_text().startswith("0,1\n")
    table = _read(path)
    np.testing.assert_array_equal(table.data, array)
    assert table.names == ["0", "1"]
    np.testing.assert_array_equal(_read(path, header=False).data, [[0, 1], *array])


def test_rows_ending_with_a_delimiter_keep_their_first_column(tmp_path):
    path = _write(tmp_path, "data.csv", "a,b\n1,2,\n3,4,\n")
    table = _read(path)
    np.testing.assert_array_equal(table.data, [[1, 2], [3, 4]])
    assert table.names == ["a", "b"]


def test_a_named_parquet_index_is_left_out_as_pandas_does(tmp_path):
    pandas = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    # Ids that are not a range: pandas stores them as a column named "id" (a range would be metadata only).
    frame = pandas.DataFrame({"id": [107, 103, 111], "x": [1.5, 2.5, 3.5], "y": [0.0, 1.0, 2.0]}).set_index("id")
    path = tmp_path / "frame.parquet"
    frame.to_parquet(path)
    import pyarrow.parquet

    assert pyarrow.parquet.ParquetFile(path).schema_arrow.names == ["x", "y", "id"]
    table = _read(path)
    np.testing.assert_array_equal(table.data, frame.to_numpy())
    assert table.names == ["x", "y"]


def test_a_truncated_gzip_file_is_a_one_line_error(tmp_path, capsys):
    path = tmp_path / "data.csv.gz"
    payload = gzip.compress(("x,y\n" + "1.5,2.5\n" * 2000).encode())
    path.write_bytes(payload[: len(payload) // 2])
    assert main(["fit", str(path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("fastem: error: the compressed data file is truncated or corrupted") and "Traceback" not in error
