"""The column rules of the command line's data files: what is a number, which columns are used.

:mod:`fastem.tables` reads a file's fields; this module turns each column's
fields into float64 values and decides which columns make the array:

* **Missing values**: an empty field and ``NA``, ``NaN``, ``N/A``, ``null``,
  ``<NA>`` (any case) read as NaN.
* **Text columns**: a column whose non-missing fields are mostly not numbers
  is a text column: left out with a note unless ``--columns`` selects it, which
  is an error. In a numeric column, a field that is neither a number nor a
  missing-value marker is an error naming its line (1-based, counting every
  line of the file), its column (1-based, with its name) and its text.
* **Row index**: a row-index column (found by the reader) is left out, with a
  note, unless ``--columns`` selects it.
* **Selection**: ``--columns`` by name or 1-based position, ranges like 2-5,
  in the order given; a model's fitted feature names choose and order the
  columns of a file with a header.
"""

from __future__ import annotations

import csv
import difflib
import re
from typing import NamedTuple

import numpy as np

MISSING_MARKERS = ("", "NA", "NaN", "N/A", "null", "<NA>")
MISSING_LOWER = frozenset(marker.lower() for marker in MISSING_MARKERS)
_MISSING = np.array(sorted(MISSING_LOWER))
DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+(?:[eE][+-]?\d+)?")


class Table(NamedTuple):
    """What :func:`fastem.tables.read_table` returns."""

    data: np.ndarray
    """(n_rows, n_columns) float64, C-ordered; NaN where a field is missing."""
    names: list | None
    """The columns' names (from the header), one per column of ``data``; None without a header."""
    notes: list
    """What was left out of ``data`` and why: one sentence each, for the user."""
    sequence: np.ndarray | None
    """The values of ``sequence_column`` (strings for text files), None without one."""


# ---------------------------------------------------------------------------
# Columns while they are read


class Column:
    """One column's values as they are read: numbers, and what was not a number."""

    def __init__(self, keep_raw: bool = False, type_name: str | None = None):
        self.blocks = []
        self.n_numbers = 0
        self.n_text = 0
        self.n_comma = 0
        self.first_text = None  # (line, field)
        self.first_comma = None
        self.raw = [] if keep_raw else None
        self.type_name = type_name  # the dtype of a non-numeric .npy/.parquet column
        self.first_line = None  # of the first row read

    @classmethod
    def of_numbers(cls, values) -> "Column":
        column = cls()
        values = np.asarray(values, dtype=np.float64)
        column.blocks.append(values)
        column.n_numbers = int(np.count_nonzero(~np.isnan(values)))
        return column

    def add(self, fields: tuple, lines: list) -> None:
        """Convert one block of fields (strings) read on ``lines``."""
        if self.first_line is None:
            self.first_line = lines[0]
        if self.raw is not None:
            self.raw.extend(field.strip() for field in fields)
        try:
            values = np.array(fields, dtype=np.float64)  # the common case: every field a number
        except ValueError:
            values = self._convert_with_markers(fields, lines)
        self.blocks.append(values)
        self.n_numbers += int(np.count_nonzero(~np.isnan(values)))

    def _convert_with_markers(self, fields: tuple, lines: list) -> np.ndarray:
        text = np.char.strip(np.array(fields, dtype=str))
        # np.where, not assignment: "nan" would be cut to the width of a narrow string array.
        text = np.where(np.isin(np.char.lower(text), _MISSING), "nan", text)
        try:
            return text.astype(np.float64)
        except ValueError:
            pass
        values = np.empty(len(text))
        for i, field in enumerate(text.tolist()):
            try:
                values[i] = float(field)
                continue
            except ValueError:
                values[i] = np.nan
            if DECIMAL_COMMA.fullmatch(field):
                self.n_comma += 1
                self.first_comma = self.first_comma or (lines[i], field)
            else:
                self.n_text += 1
                self.first_text = self.first_text or (lines[i], field)
        return values

    @property
    def kind(self) -> str:
        """'numeric', 'text', 'empty' (every field missing) or 'bad' (numbers and a few non-numbers)."""
        if self.type_name is not None or self.n_text > self.n_numbers + self.n_comma:
            return "text"
        if self.n_text or self.n_comma:
            return "bad"
        return "numeric" if self.n_numbers else "empty"

    def values(self) -> np.ndarray:
        return self.blocks[0] if len(self.blocks) == 1 else np.concatenate(self.blocks)

    def bad_field_error(self, path: str, label: str, header: bool) -> ValueError:
        line, field = min(found for found in (self.first_text, self.first_comma) if found is not None)
        message = f"{path}, line {line}, {label}: {field!r} is not a number"
        if DECIMAL_COMMA.fullmatch(field):
            message += " (a decimal comma? fastem reads numbers with a decimal point: 1.5, not 1,5)"
        else:
            markers = ", ".join(marker for marker in MISSING_MARKERS if marker)
            message += f" nor a missing-value marker (an empty field, {markers})"
        if not header and line == self.first_line:
            message += "; if that line holds the column names, pass --header"
        return ValueError(message + ".")

    def first_text_description(self) -> str:
        if self.type_name is not None:
            return f"it holds {self.type_name} values"
        line, field = self.first_text
        return f"{field!r} on line {line}"


def label(position: int, names) -> str:
    """'column 3' or "column 3 ('height')": positions are 1-based."""
    name = names[position] if names is not None else ""
    return f"column {position + 1}" + (f" ({name!r})" if name else "")


def quoted(items) -> str:
    return ", ".join(repr(item) for item in items)


# ---------------------------------------------------------------------------
# Which columns: --columns, --sequence-column, a model's feature names


class Plan(NamedTuple):
    selected: list | None  # 0-based positions in the wanted order; None: the default selection
    sequence: int | None


class Request:
    """The selection asked for, resolved once the file's names and column count are known."""

    def __init__(self, path, columns, sequence_column, feature_names):
        self.path = path
        self.columns = columns
        self.sequence_column = sequence_column
        self.feature_names = None if feature_names is None else [str(name) for name in feature_names]

    def resolve(self, names, n_columns: int) -> Plan:
        sequence = None
        if self.sequence_column is not None:
            found = self._positions(str(self.sequence_column).strip(), names, n_columns, "--sequence-column",
                                    ranges=False)
            sequence = found[0]
        if self.columns is not None:
            text = self.columns if isinstance(self.columns, str) else None
            items = next(csv.reader([text]), []) if text is not None else [str(item) for item in self.columns]
            selected = []
            for item in (item.strip() for item in items):
                if item:
                    selected += self._positions(item, names, n_columns, "--columns", ranges=True)
            if not selected:
                raise ValueError(f"--columns {self.columns!r} names no column.")
        elif self.feature_names is not None and names is not None:
            missing = [name for name in self.feature_names if name not in names]
            if missing:
                raise ValueError(
                    f"{self.path} has no column {quoted(missing)}: the model was fitted on columns "
                    f"{quoted(self.feature_names)}; the file's columns are {quoted(names)}."
                )
            selected = [self._positions(name, names, n_columns, "a fitted column", ranges=False)[0]
                        for name in self.feature_names]
        else:
            return Plan(None, sequence)
        for i, position in enumerate(selected):
            if position in selected[:i]:
                raise ValueError(f"--columns selects {label(position, names)} twice.")
        if sequence is not None and sequence in selected:
            raise ValueError(f"the sequence column, {label(sequence, names)}, cannot also be a feature (--columns).")
        return Plan(selected, sequence)

    def _positions(self, item: str, names, n_columns: int, option: str, ranges: bool) -> list:
        if names is not None and item in names:
            found = [j for j, name in enumerate(names) if name == item]
            if len(found) > 1:
                places = ", ".join(str(j + 1) for j in found)
                raise ValueError(f"{option}: the header names {item!r} {len(found)} times (columns {places}): "
                                 "choose by position.")
            return found
        match = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", item) if ranges else re.fullmatch(r"(\d+)()", item)
        if match is None:
            raise ValueError(self._unknown_name(item, names, option))
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) else low
        for position in (low, high):
            if position < 1:
                raise ValueError(f"{option} {item}: positions are 1-based (the first column is 1).")
            if position > n_columns:
                raise ValueError(f"{option} {item} is outside the file's {n_columns} columns "
                                 "(positions are 1-based).")
        if high < low:
            raise ValueError(f"{option} {item}: a range goes from low to high, like 2-5.")
        return list(range(low - 1, high))

    def _unknown_name(self, item: str, names, option: str) -> str:
        if names is None:
            return (f"{option} {item!r}: {self.path} has no header line, so columns are chosen by 1-based "
                    "position (pass --header if its first line holds the names).")
        close = difflib.get_close_matches(item, [name for name in names if name], n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return f"{option}: {self.path} has no column {item!r}; its columns are {quoted(names)}.{hint}"


# ---------------------------------------------------------------------------
# The array


def assemble(path: str, names, columns: dict, index: list, plan: Plan) -> Table:
    notes = []
    if plan.selected is None:
        chosen, text, empty = [], [], []
        left_out = [j for j in index if j != plan.sequence]
        if left_out and names[left_out[0]]:
            notes.append(f"ignoring pandas' index column{'s' if len(left_out) > 1 else ''} "
                         f"{quoted(names[j] for j in left_out)} (--columns chooses columns).")
        elif left_out:
            notes.append("ignoring column 1, which has no name in the header: a row index, as pandas' to_csv and "
                         "R's write.csv write it (--columns chooses columns).")
        for j, column in sorted(columns.items()):
            if j in index or j == plan.sequence:
                continue
            kind = column.kind
            if kind == "bad":
                raise column.bad_field_error(path, label(j, names), names is not None)
            {"text": text, "empty": empty, "numeric": chosen}[kind].append(j)
        if text:
            plural = "s" if len(text) > 1 else ""
            described = ", ".join(repr(names[j]) if names and names[j] else str(j + 1) for j in text)
            notes.append(f"ignoring text column{plural} {described} (--columns chooses columns).")
        if empty:
            notes.append(f"ignoring {', '.join(label(j, names) for j in empty)}: no values, every field missing.")
        if not chosen:
            raise ValueError(f"{path} has no numeric column" + (f" ({' '.join(notes)})" if notes else "") + ".")
    else:
        chosen = plan.selected
        for j in chosen:
            column = columns[j]
            kind = column.kind
            if kind == "text":
                raise ValueError(f"{path}: {label(j, names)} is not numeric: {column.first_text_description()}.")
            if kind == "bad":
                raise column.bad_field_error(path, label(j, names), names is not None)
            if kind == "empty":
                raise ValueError(f"{path}: {label(j, names)} has no values (every field is missing).")
    n_rows = len(columns[chosen[0]].values())
    data = np.empty((n_rows, len(chosen)), dtype=np.float64)
    for i, j in enumerate(chosen):
        data[:, i] = columns[j].values()
    sequence = None
    if plan.sequence is not None:
        column = columns[plan.sequence]
        sequence = np.asarray(column.raw) if column.raw is not None else column.values()
    return Table(data, None if names is None else [names[j] for j in chosen], notes, sequence)
