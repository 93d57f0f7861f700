"""A workbook's sheets as rows of values, read in one streaming pass.

openpyxl opens the package (content types, shared strings, the workbook, its styles: which
cell styles are dates); the sheets' own XML is read here by lxml's parser calling
:class:`_Rows` for each tag and text (a parser target): no element is built, and each row is
handed on once read. openpyxl's read-only mode reads every sheet twice (once to size it, when
no ``<dimension>`` comes first, as in the files its own write-only mode makes) and builds an
object per cell: 60,000 rows took most of an import's time. Building an element per cell and
asking it for its parts (lxml's ``iterparse``) still cost ~4.5 s for 60,000 rows; the target
takes about half that.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any

_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
_ROW, _CELL, _VALUE, _INLINE = f"{_NS}row", f"{_NS}c", f"{_NS}v", f"{_NS}is"
_TEXT, _PHONETIC = f"{_NS}t", f"{_NS}rPh"
_CHUNK = 64 * 1024  # bytes of a sheet's XML fed to the parser at a time
_DIGITS = "0123456789"


def _column_index(letters: str) -> int:
    from openpyxl.utils.cell import column_index_from_string

    return column_index_from_string(letters)


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

        rows = _Rows(self)
        parser = etree.XMLParser(
            target=rows, resolve_entities=False, no_network=True, huge_tree=True
        )
        with self._archive.open(self.sheets[title].lstrip("/")) as source:
            while chunk := source.read(_CHUNK):
                parser.feed(chunk)
                yield from rows.done
                rows.done.clear()
        parser.close()
        yield from rows.done

    def value(self, kind: str, style: str | None, text: str | None) -> Any:
        """A cell's value from its type (``t``), style (``s``) and text (``<v>``, or the
        ``<t>`` parts of an inline string)."""
        if text is None or kind == "inlineStr":
            return text
        if kind == "s":
            return self._strings[int(text)]
        if kind in ("str", "e"):
            return text
        if kind == "b":
            return text.strip() in ("1", "true")
        if kind == "d":
            return datetime.fromisoformat(text)
        number: int | float = float(text) if any(c in text for c in ".eE") else int(text)
        if style is not None and int(style) in self._dates:
            from openpyxl.utils.datetime import from_excel

            return from_excel(number, self._epoch)
        return number


class _Rows:
    """The parser's target for a sheet: collects each ``<row>``'s values into :attr:`done`.

    A cell's text is that of its ``<v>``; an inline string's (``t="inlineStr"``) that of the
    ``<t>`` elements inside its ``<is>``, phonetic runs (``<rPh>``, a reading aid) left out."""

    def __init__(self, workbook: Workbook) -> None:
        self._workbook = workbook
        self._columns: dict[str, int] = {}  # column letters → 1-based index, as met
        self.done: list[tuple[int, tuple[Any, ...]]] = []
        self._number = 0
        self._values: list[Any] = []
        self._ref: str | None = None
        self._kind = "n"
        self._style: str | None = None
        self._parts: list[str] | None = None  # None: the cell has no text element
        self._inline = False  # inside an inline string's <is>
        self._phonetic = 0  # depth inside <rPh>
        self._collect = False

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        if tag == _CELL:
            self._ref = attrib.get("r")
            self._kind = attrib.get("t", "n")
            self._style = attrib.get("s")
            self._parts = None
        elif tag == _VALUE:
            if self._kind != "inlineStr":
                self._parts = []
                self._collect = True
        elif tag == _TEXT:
            self._collect = self._inline and not self._phonetic
        elif tag == _INLINE:
            if self._kind == "inlineStr":
                self._parts = []
                self._inline = True
        elif tag == _ROW:
            number = attrib.get("r")
            self._number = int(number) if number else self._number + 1
            self._values = []
        elif tag == _PHONETIC:
            self._phonetic += 1

    def data(self, text: str) -> None:
        if self._collect and self._parts is not None:
            self._parts.append(text)

    def end(self, tag: str) -> None:
        if tag == _CELL:
            values = self._values
            ref = self._ref
            if ref:
                letters = ref.rstrip(_DIGITS)
                column = self._columns.get(letters)
                if column is None:
                    column = self._columns[letters] = _column_index(letters)
            else:
                column = len(values) + 1
            if column > len(values):
                values.extend([None] * (column - len(values)))
            text = None if self._parts is None else "".join(self._parts)
            values[column - 1] = self._workbook.value(self._kind, self._style, text)
        elif tag in (_VALUE, _TEXT):
            self._collect = False
        elif tag == _INLINE:
            self._inline = False
        elif tag == _ROW:
            self.done.append((self._number, tuple(self._values)))
        elif tag == _PHONETIC:
            self._phonetic -= 1

    def close(self) -> None:
        return None
