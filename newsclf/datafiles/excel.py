"""Excel workbooks (.xlsx) in and out, with openpyxl: the rows of one sheet as text fields, and a
sheet of labelled rows written as it streams in."""

from __future__ import annotations

import datetime as dt
from collections import deque
from pathlib import Path
from typing import Iterator

from newsclf.errors import DataError

EXCEL_MAX_ROWS = 1_048_576  # rows of an .xlsx sheet, the header row included
EXCEL_MAX_CELL = 32_767     # characters of an .xlsx cell


def open_sheet(path: str, sheet: str | None):
    """The workbook (to close after use) and the chosen worksheet: ``sheet`` by name, or by
    position from 1 if it is a number and no sheet has that name; the first sheet by default."""
    if path == "-":
        raise DataError("an .xlsx workbook cannot be read from standard input; give its path")
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except Exception as exc:  # openpyxl raises zipfile, KeyError and XML errors alike
        raise DataError(f"{path}: cannot read as an .xlsx workbook ({type(exc).__name__}: "
                        f"{exc}); save it from Excel as .xlsx, or as CSV") from None
    names = workbook.sheetnames
    if sheet is None:
        chosen = names[0]
    elif sheet in names:
        chosen = sheet
    elif sheet.isdecimal() and 1 <= int(sheet) <= len(names):
        chosen = names[int(sheet) - 1]
    else:
        workbook.close()
        raise DataError(f"{path}: no sheet {sheet!r}; its sheets are "
                        f"{', '.join(map(repr, names))} (--sheet takes a name or a position "
                        "from 1)")
    worksheet = workbook[chosen]
    if not hasattr(worksheet, "iter_rows"):
        workbook.close()
        raise DataError(f"{path}: sheet {chosen!r} is a chart, not a table; its sheets are "
                        f"{', '.join(map(repr, names))} (--sheet picks one)")
    return workbook, worksheet


def sheet_records(worksheet, first_row: int = 1, read_as_empty: deque | None = None
                  ) -> Iterator[tuple[int, list[str]]]:
    """``(row number, cells as text)`` for each row from ``first_row`` on with a non-empty
    cell; trailing empty cells are left out. The numbers of the rows read as empty after the
    first non-empty one go to ``read_as_empty`` (their cells may be formulas without values:
    :meth:`FormulaCells.refused` checks them)."""
    started = False
    for number, row in enumerate(worksheet.iter_rows(min_row=first_row, values_only=True),
                                 first_row):
        fields = [cell_text(value) for value in row]
        while fields and fields[-1] == "":
            fields.pop()
        if fields:
            started = True
            yield number, fields
        elif started and read_as_empty is not None:
            read_as_empty.append(number)


class FormulaCells:
    """The formulas of a sheet's cells that were read as empty: a workbook written by a program
    that does not calculate (openpyxl, many exporters) stores formulas without their values,
    and labelling those cells as empty texts would be a silent mistake. The sheet is read a
    second time, formulas kept, only from the first empty cell that is checked on."""

    def __init__(self, path: str, title: str):
        self.path, self.title = path, title
        self._workbook = self._rows = None
        self._row = (0, {})

    def refused(self, rows, columns: list[int], read_as_empty: deque):
        """``rows`` (``(row number, fields)``, numbers increasing), refused at the first
        cell of ``columns`` (indexes from 0) that is empty because it holds a formula with no
        value, in those rows or in the rows between them whose numbers ``read_as_empty`` holds
        (filled by :func:`sheet_records` as it reads)."""
        for number, fields in rows:
            while read_as_empty and read_as_empty[0] < number:
                self._refuse_formulas(read_as_empty.popleft(), columns)
            self._refuse_formulas(number, [column for column in columns if fields[column] == ""])
            yield number, fields
        while read_as_empty:
            self._refuse_formulas(read_as_empty.popleft(), columns)

    def _refuse_formulas(self, number: int, columns: list[int]) -> None:
        for column in columns:
            if formula := self._formula(number, column):
                from openpyxl.utils import get_column_letter

                raise DataError(
                    f"{self.path}: cell {get_column_letter(column + 1)}{number} of sheet "
                    f"{self.title!r} holds a formula ({formula[:40]}) whose value was "
                    "never computed, so it reads as empty (the workbook was written by a "
                    "program that does not calculate formulas); open it in Excel or "
                    "LibreOffice and save it, which stores the values")

    def _formula(self, number: int, column: int) -> str | None:
        if self._rows is None:
            from openpyxl import load_workbook

            self._workbook = load_workbook(self.path, read_only=True, data_only=False)
            self._rows = _uncomputed_formulas(self._workbook[self.title], number)
        while self._row[0] < number:
            self._row = next(self._rows, (number, {}))
        return self._row[1].get(column + 1) if self._row[0] == number else None

    def close(self) -> None:
        if self._workbook is not None:
            self._workbook.close()


def _uncomputed_formulas(worksheet, first_row: int):
    """(row number, {column number: formula}) of the rows from ``first_row`` on that hold
    formulas stored without a value. Excel and LibreOffice store a formula that computed to an
    empty text as ``t="str"`` with an empty value, which is an empty text, not a missing value;
    openpyxl's reader drops that type, so its parser is asked for it here."""
    from openpyxl.worksheet._reader import VALUE_TAG, WorkSheetParser

    class Parser(WorkSheetParser):
        def parse_cell(self, element):
            cell = super().parse_cell(element)
            cell["uncomputed"] = (cell["data_type"] == "f" and not element.findtext(VALUE_TAG)
                                  and element.get("t") != "str")
            return cell

    with worksheet._get_source() as source:
        for number, cells in Parser(source, worksheet._shared_strings).parse():
            if number >= first_row:
                yield number, {cell["column"]: getattr(cell["value"], "text", cell["value"])
                               for cell in cells if cell["uncomputed"]}  # an ArrayFormula's


def cell_text(value) -> str:
    """A cell's value as text: whole numbers without ``.0``, dates and times in ISO format."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date().isoformat()  # a date cell: Excel keeps dates as midnight
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    return str(value)


class SheetWriter:
    """Writes rows to one sheet of a new workbook, saved to ``path`` by :meth:`close`. Cells keep
    their types (numbers stay numbers); NaN becomes an empty cell."""

    def __init__(self, path: Path, source: str):
        from openpyxl import Workbook
        from openpyxl.cell import WriteOnlyCell

        self._text_cell = WriteOnlyCell
        self.path, self.source = path, source
        self.workbook = Workbook(write_only=True)
        self.sheet = self.workbook.create_sheet("labelled")
        self.rows = 0

    def write(self, frame, header: bool) -> None:
        from openpyxl.utils.exceptions import IllegalCharacterError

        if self.rows + header + len(frame) > EXCEL_MAX_ROWS:
            raise DataError(f"{self.source}: more than {EXCEL_MAX_ROWS - 1:,} rows do not fit in "
                            "an Excel sheet; write .csv output (with --excel for Excel)")
        rows = [list(frame.columns)] if header else []
        rows += frame.astype(object).where(frame.notna(), None).values.tolist()
        lines = ([None] if header else []) + list(frame.index)
        for line, row in zip(lines, rows):
            where = f"{self.source}:{line}" if line is not None else self.source
            try:
                self.sheet.append([self._cell(value, where) for value in row])
            except IllegalCharacterError:
                raise DataError(f"{where}: holds a control character that an .xlsx cell cannot "
                                "hold; write .csv output instead") from None
        self.rows += len(rows)

    def _cell(self, value, where: str):
        """A value as an .xlsx cell: text stays text (a leading ``=`` is not a formula), and
        text too long for a cell is refused."""
        if not isinstance(value, str):
            return value
        if len(value) > EXCEL_MAX_CELL:
            raise DataError(f"{where}: a field of {len(value):,} characters; an .xlsx cell holds "
                            f"at most {EXCEL_MAX_CELL:,}: write .csv output instead")
        cell = self._text_cell(self.sheet, value=value)
        cell.data_type = "s"
        return cell

    def close(self) -> None:
        """Save the workbook (what ``Workbook.save`` does, with the archive closed on a failed
        write too: left open, it fails again noisily when Python collects it)."""
        from zipfile import ZIP_DEFLATED, ZipFile

        from openpyxl.writer.excel import ExcelWriter

        archive = ZipFile(self.path, "w", ZIP_DEFLATED, allowZip64=True)
        self.workbook.properties.modified = dt.datetime.now()
        try:
            ExcelWriter(self.workbook, archive).save()
        except BaseException:
            try:
                archive.close()
            except OSError:
                pass
            raise

    def discard(self) -> None:
        """Give up the sheet: its rows are finished off in openpyxl's own temporary file, which
        it then removes (left open, they would fail noisily when Python collects them)."""
        try:
            self.sheet.close()
        except Exception:  # noqa: BLE001 - nothing of it is kept anyway
            pass
