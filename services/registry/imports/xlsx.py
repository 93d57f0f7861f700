"""A workbook's sheets as rows of values, read in one streaming pass.

openpyxl opens the package (content types, shared strings, the workbook, its styles: which
cell styles are dates); the sheets' own XML is read here with lxml, row by row, each row
dropped once read. openpyxl's read-only mode reads every sheet twice (once to size it, when no
``<dimension>`` comes first, as in the files its own write-only mode makes) and builds an
object per cell: 60,000 rows took most of an import's time.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any

_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_ROW, _CELL, _VALUE, _INLINE = f"{_NS}row", f"{_NS}c", f"{_NS}v", f"{_NS}is"
_TEXT, _RUN, _PHONETIC = f"{_NS}t", f"{_NS}r", f"{_NS}rPh"


class Workbook:
    """An XLSX package opened for reading its sheets' values (formulas as last calculated)."""

    def __init__(self, data: bytes) -> None:
        from openpyxl.reader.excel import ExcelReader
        from openpyxl.styles.stylesheet import apply_stylesheet

        reader = ExcelReader(io.BytesIO(data), read_only=True, data_only=True)
        reader.read_manifest()
        reader.read_strings()
        reader.read_workbook()
        apply_stylesheet(reader.archive, reader.wb)
        self._archive = reader.archive
        self._strings = [str(s) for s in reader.shared_strings]
        self._dates: set[int] = set(reader.wb._date_formats)  # type: ignore[attr-defined]
        self._epoch = reader.wb.epoch
        self.sheets = {sheet.name: rel.target for sheet, rel in reader.parser.find_sheets()}

    def close(self) -> None:
        self._archive.close()

    def rows(self, title: str) -> Iterator[tuple[int, tuple[Any, ...]]]:
        """(row number, values from column A) of each row the sheet holds, in order."""
        from lxml import etree  # type: ignore[import-untyped]

        with self._archive.open(self.sheets[title].lstrip("/")) as source:
            number = 0
            for _, row in etree.iterparse(
                source, tag=_ROW, resolve_entities=False, no_network=True, huge_tree=True
            ):
                number = int(row.get("r") or number + 1)
                yield number, self._values(row)
                row.clear()
                while row.getprevious() is not None:
                    del row.getparent()[0]

    def _values(self, row: Any) -> tuple[Any, ...]:
        from openpyxl.utils.cell import column_index_from_string, coordinate_from_string

        values: list[Any] = []
        for cell in row.iterchildren(_CELL):
            ref = cell.get("r")
            column = (
                column_index_from_string(coordinate_from_string(ref)[0]) if ref else len(values) + 1
            )
            if column > len(values):
                values.extend([None] * (column - len(values)))
            values[column - 1] = self._value(cell)
        return tuple(values)

    def _value(self, cell: Any) -> Any:
        kind = cell.get("t", "n")
        if kind == "inlineStr":
            inline = cell.find(_INLINE)
            if inline is None:
                return None
            return "".join(
                t.text or ""
                for t in inline.iter(_TEXT)
                if t.getparent().tag != _PHONETIC  # a reading aid, not the text
            )
        text = cell.findtext(_VALUE)
        if text is None:
            return None
        if kind == "s":
            return self._strings[int(text)]
        if kind in ("str", "e"):
            return text
        if kind == "b":
            return text.strip() in ("1", "true")
        if kind == "d":
            return datetime.fromisoformat(text)
        number: int | float = float(text) if any(c in text for c in ".eE") else int(text)
        if int(cell.get("s", "0")) in self._dates:
            from openpyxl.utils.datetime import from_excel

            return from_excel(number, self._epoch)
        return number
