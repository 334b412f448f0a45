"""Data files read into a float64 array and its column names: the command line's reader.

Every command that reads data (``fit``, ``select``, ``fit-hmm``, ``predict``)
goes through :func:`read_table`, so a file means the same to all of them. Its
messages name the command line's options (``--columns``, ``--header``, ...).

Formats, chosen by the file's first bytes, then its extension:

* delimited text: ``.csv``, ``.tsv``, ``.txt`` and any other name, optionally
  compressed (``.gz``, ``.bz2``, ``.xz``), UTF-8 with or without a BOM (Excel's
  "CSV UTF-8"), quoted fields as the ``csv`` module reads them;
* ``.npy`` (numbers; a structured array's field names are column names);
* ``.parquet`` with pyarrow (or pandas and a parquet engine): ``pip install
  "fastem[parquet]"``.

The rules for text files:

* **Delimiter**: the first of tab, ``;``, ``,`` and whitespace (runs of
  spaces and tabs) that splits the first lines into the same number (> 1) of
  fields; tab for ``.tsv``/``.tab``.
* **Header**: the first line is a header when none of its fields is a number
  and at least one is text. A first data row with a missing field (``1,,3``)
  has numbers, so it stays data; names that are numbers (``2019,2020``) need
  ``--header``. Leading lines starting with ``#`` and blank lines are skipped.
* **Row index**: an unnamed first column (the empty first header field of
  pandas' ``to_csv``; R's ``write.csv``; R's ``write.table``, whose header has
  one field fewer than its rows) is left out, with a note.
* **Ragged rows**: a row with another number of fields than the first is an
  error naming its line (1-based, counting every line of the file).

Missing values, text columns and the selection (``--columns``) are the rules
of :mod:`fastem.table_columns`, the same for every format.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import lzma
import os
import re
from typing import Sequence

import numpy as np

from fastem.table_columns import DECIMAL_COMMA, MISSING_LOWER, Column, Request, Table, assemble

__all__ = ["read_table", "Table", "WHITESPACE", "PARQUET_EXTRA"]

WHITESPACE = "whitespace"
# Tab first: text fields often hold commas and spaces; ';' before ',': files
# with a decimal comma separate fields with ';' (then ',' splits evenly too).
SNIFFED_DELIMITERS = ("\t", ";", ",", WHITESPACE)
PARQUET_EXTRA = 'pip install "fastem[parquet]"'

_COMPRESSED = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_SAMPLE_LINES = 50
_BLOCK_ROWS = 8192  # rows converted at once: bounded memory for the fields' strings


def read_table(path, columns=None, *, header=None, delimiter=None, sequence_column=None,
               feature_names=None) -> Table:
    """Read a data file into a float64 array and its column names.

    Parameters
    ----------
    path : str or os.PathLike
    columns : str, optional
        Comma-separated names or 1-based positions, ranges like ``2-5``, in the
        order wanted (the ``csv`` module splits it, so a quoted ``"a,b"`` is one
        name). A name that is in the header wins over a position. Default:
        every numeric column but a row index, text columns and empty columns.
    header : bool, optional
        Whether the first line of a text file is a header (default: detected).
    delimiter : str, optional
        One character, ``"\\t"``, or ``"whitespace"`` (default: sniffed).
    sequence_column : str, optional
        A name or 1-based position whose values are returned as ``sequence``
        and which is not a column of ``data``.
    feature_names : sequence of str, optional
        The names a model was fitted on: when ``columns`` is None and the file
        has a header, those columns in that order.

    Returns
    -------
    Table

    Raises
    ------
    ValueError
        For anything wrong with the file or the selection, with the line
        (1-based, counting every line), the column (1-based) and its name.
    ImportError
        For a parquet file without pyarrow or pandas.
    """
    path = os.fspath(path)
    request = Request(path, columns, sequence_column, feature_names)
    kind = _file_kind(path)
    if kind != "text" and (header is not None or delimiter is not None):
        option = "--delimiter" if header is None else ("--header" if header else "--no-header")
        raise ValueError(f"{option} applies to text files; {path} is a .{kind} file.")
    if kind == "npy":
        names, table_columns, index, plan = _read_npy(path, request)
    elif kind == "parquet":
        names, table_columns, index, plan = _read_parquet(path, request)
    else:
        names, table_columns, index, plan = _read_text(path, request, header, delimiter)
    return assemble(path, names, table_columns, index, plan)


# ---------------------------------------------------------------------------
# Formats


def _extension(path: str) -> str:
    """'.csv' for data.csv and data.csv.gz."""
    base, extension = os.path.splitext(path.lower())
    return os.path.splitext(base)[1] if extension in _COMPRESSED else extension


def _file_kind(path: str) -> str:
    """'npy', 'parquet' or 'text': the first bytes decide, then the extension."""
    if os.path.splitext(path.lower())[1] in _COMPRESSED:
        return "text"
    extension = _extension(path)
    try:
        with open(path, "rb") as handle:
            start = handle.read(8)
    except IsADirectoryError:
        raise ValueError(f"{path} is a folder, not a data file.") from None
    if start.startswith(b"\x93NUMPY"):
        return "npy"
    if start.startswith(b"PAR1"):
        return "parquet"
    if start.startswith(b"PK\x03\x04"):  # a zip archive: .npz, .xlsx, a fastem model file
        what = "an Excel workbook: save it as CSV" if extension in (".xlsx", ".xls") else (
            "a zip archive (an .npz or model file?): data files are .csv, .tsv, .txt, .npy or .parquet")
        raise ValueError(f"{path} is {what}.")
    if extension in (".npy", ".parquet", ".pq"):
        raise ValueError(f"{path} is not a {extension} file (its first bytes are {start!r}).")
    return "text"


def _read_npy(path: str, request: Request):
    array = np.load(path, allow_pickle=False)
    if array.dtype.names:
        names = list(array.dtype.names)
        parts = [array[name] for name in names]
    else:
        if array.ndim == 1:
            array = array[:, np.newaxis]
        if array.ndim != 2:
            raise ValueError(f"{path} holds a {array.ndim}-dimensional array; data files hold rows and columns.")
        names = None
        parts = [array[:, j] for j in range(array.shape[1])]
    if not parts or len(parts[0]) == 0:
        raise ValueError(f"{path} holds no data (an array of shape {array.shape}).")
    if any(part.ndim != 1 for part in parts):
        raise ValueError(f"{path}: every field of a structured array must be one number per row.")
    plan = request.resolve(names, len(parts))
    columns = {}
    for j, part in enumerate(parts):
        if part.dtype.kind in "biuf":
            columns[j] = Column.of_numbers(part)
        else:
            columns[j] = Column(type_name=str(part.dtype))
            columns[j].raw = part
    return names, columns, [], plan


def _read_parquet(path: str, request: Request):
    try:
        import pyarrow.parquet as parquet
    except ImportError:
        return _read_parquet_with_pandas(path, request)
    import pyarrow

    parquet_file = parquet.ParquetFile(path)
    names = list(parquet_file.schema_arrow.names)
    plan = request.resolve(names, len(names))
    wanted = range(len(names)) if plan.selected is None else [*plan.selected, plan.sequence]
    wanted = sorted({j for j in wanted if j is not None})
    table = parquet_file.read(columns=[names[j] for j in wanted], use_pandas_metadata=False)
    columns = {}
    for j, data in zip(wanted, table.columns):
        kind = data.type
        numeric = (pyarrow.types.is_integer(kind) or pyarrow.types.is_floating(kind)
                   or pyarrow.types.is_boolean(kind) or pyarrow.types.is_decimal(kind))
        if numeric:
            # Nulls become NaN once the column is float64.
            columns[j] = Column.of_numbers(data.cast(pyarrow.float64()).to_numpy(zero_copy_only=False))
        else:
            columns[j] = Column(type_name=str(kind))
            columns[j].raw = np.asarray(data.to_pylist(), dtype=object)
    if table.num_rows == 0:
        raise ValueError(f"{path} holds no rows.")
    # pandas' index columns: unnamed ones are stored as __index_level_N__, named ones (set_index("id"))
    # under their name and listed in the file's pandas metadata, which pandas.read_parquet also drops.
    pandas_index = (parquet_file.schema_arrow.pandas_metadata or {}).get("index_columns", [])
    index = [j for j, name in enumerate(names)
             if re.fullmatch(r"__index_level_\d+__", name) or name in pandas_index]
    return names, columns, index, plan


def _read_parquet_with_pandas(path: str, request: Request):
    try:
        import pandas

        frame = pandas.read_parquet(path)
    except ImportError:
        raise ImportError(f"reading {path} needs pyarrow: {PARQUET_EXTRA}") from None
    names = [str(name) for name in frame.columns]
    plan = request.resolve(names, len(names))
    columns = {}
    for j, name in enumerate(frame.columns):
        series = frame[name]
        if pandas.api.types.is_numeric_dtype(series.dtype):
            columns[j] = Column.of_numbers(series.to_numpy(dtype=np.float64, na_value=np.nan))
        else:
            columns[j] = Column(type_name=str(series.dtype))
            columns[j].raw = series.to_numpy(dtype=object)
    if len(frame) == 0:
        raise ValueError(f"{path} holds no rows.")
    return names, columns, [], plan


# ---------------------------------------------------------------------------
# Delimited text


def _open_text(path: str):
    opener = _COMPRESSED.get(os.path.splitext(path.lower())[1], open)
    # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark; newline="": the csv module's own rule.
    return opener(path, "rt", encoding="utf-8-sig", newline="")


def _records(lines, delimiter: str):
    """csv rows of ``lines``; whitespace: runs of spaces and tabs separate fields, quotes still group them."""
    if delimiter == WHITESPACE:
        return csv.reader((line.strip().replace("\t", " ") for line in lines), delimiter=" ",
                          skipinitialspace=True)
    return csv.reader(lines, delimiter=delimiter)


def _is_blank(record: list) -> bool:
    return not record or (len(record) == 1 and not record[0].strip())


def _sniff(lines: list) -> str:
    """The first candidate that splits every sample line alike (a header may have one field fewer)."""
    best, best_score = ",", 0
    for delimiter in SNIFFED_DELIMITERS:
        counts = [len(record) for record in _records(lines, delimiter) if not _is_blank(record)]
        if not counts:
            continue
        body = counts[1:] or counts
        # counts[0] one short: R's write.table header, without a field above the row names.
        if min(body) == max(body) > 1 and (counts[0] == body[0] or 1 < counts[0] == body[0] - 1):
            return delimiter
        # No candidate agrees everywhere (a ragged file): the one whose most common count (> 1) most lines
        # have, so that the reader reports the odd line; none: one column.
        mode = max(set(body), key=body.count)
        score = body.count(mode) if mode > 1 else 0
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _describe_delimiter(delimiter: str) -> str:
    return {"\t": "tab", WHITESPACE: "whitespace"}.get(delimiter, repr(delimiter))


def _field_kind(field: str) -> str:
    field = field.strip()
    if field.lower() in MISSING_LOWER:
        return "missing"
    try:
        float(field)
        return "number"
    except ValueError:
        return "number" if DECIMAL_COMMA.fullmatch(field) else "text"


def _looks_like_header(fields: Sequence[str]) -> bool:
    """A first line is a header when none of its fields is a number and at least one is text.

    Or when it holds pandas' default column names, 0, 1, 2, ... (a DataFrame
    built from an array), after an empty field above the row index or not:
    ``pd.DataFrame(array).to_csv(path)`` writes ``,0,1,2``.
    """
    kinds = [_field_kind(field) for field in fields]
    if "number" not in kinds and "text" in kinds:
        return True
    names = [field.strip() for field in fields]
    if len(names) > 1 and names[0] == "":
        names = names[1:]
    return len(names) > 1 and names == [str(j) for j in range(len(names))]


def _sample(handle) -> list:
    lines = []
    while len(lines) < _SAMPLE_LINES:
        line = handle.readline()
        if not line:
            break
        if line.strip() and not line.lstrip().startswith("#"):
            lines.append(line)
    handle.seek(0)
    return lines


def _read_text(path: str, request: Request, header, delimiter):
    try:
        with _open_text(path) as handle:
            sample = _sample(handle)
            if not sample:
                raise ValueError(f"{path} is empty." if not handle.read(1) else
                                 f"{path} holds no data: only blank lines and '#' comments.")
            if delimiter is None:
                delimiter = "\t" if _extension(path) in (".tsv", ".tab") else _sniff(sample)
            reader = _records(handle, delimiter)
            try:
                return _read_records(path, reader, request, header, delimiter)
            except csv.Error as exc:
                raise ValueError(f"{path}, line {reader.line_num}: {exc}.") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text: save it as UTF-8 (in Excel: 'CSV UTF-8').") from None


def _read_records(path: str, reader, request: Request, header, delimiter: str):
    first = None
    for record in reader:
        if not _is_blank(record) and not record[0].lstrip().startswith("#"):
            first = record
            break
    if first is None:
        raise ValueError(f"{path} holds no data: only blank lines and '#' comments.")
    first_line = reader.line_num
    if header is None:
        header = _looks_like_header(first)
    names, data, data_line = None, first, first_line
    if header:
        names = [name.strip() for name in first]
        data = next((record for record in reader if not _is_blank(record)), None)
        data_line = reader.line_num
        if data is None:
            raise ValueError(f"{path} has a header line (line {first_line}) and no data rows.")
    n_columns = len(data)
    if names is not None and len(names) == n_columns - 1:
        if data[-1].strip() == "" and names[0] != "":
            names.append("")  # every row ends with a delimiter, the header does not: an empty last column
        else:
            names.insert(0, "")  # R's write.table: no header field above the row names
    elif names is not None and len(names) != n_columns:
        raise _ragged(path, data_line, n_columns, f"the header (line {first_line})", len(names), delimiter)
    plan = request.resolve(names, n_columns)
    index = [0] if names is not None and names[0] == "" and n_columns > 1 else []
    if plan.selected is None:
        wanted = [j for j in range(n_columns) if j not in index or j == plan.sequence]
    else:
        wanted = sorted({*plan.selected, *([] if plan.sequence is None else [plan.sequence])})
    columns = {j: Column(keep_raw=j == plan.sequence) for j in wanted}
    block, lines = [data], [data_line]
    reference = f"line {data_line}" if names is None else f"the header (line {first_line})"
    for record in reader:
        if len(record) != n_columns:
            if _is_blank(record):
                continue
            raise _ragged(path, reader.line_num, len(record), reference, n_columns, delimiter)
        block.append(record)
        lines.append(reader.line_num)
        if len(block) == _BLOCK_ROWS:
            _add_block(columns, block, lines)
            block, lines = [], []
    if block:
        _add_block(columns, block, lines)
    return names, columns, index, plan


def _ragged(path: str, line: int, n_fields: int, reference: str, expected: int, delimiter: str) -> ValueError:
    return ValueError(f"{path}, line {line}: {n_fields} field{'s' if n_fields != 1 else ''} where {reference} "
                      f"has {expected} (fields separated by {_describe_delimiter(delimiter)}; --delimiter "
                      "chooses).")


def _add_block(columns: dict, block: list, lines: list) -> None:
    fields = list(zip(*block))
    for j, column in columns.items():
        column.add(fields[j], lines)

