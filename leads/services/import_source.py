"""Reading an import file (SPEC section 9): its encoding, its header, its rows, twice.

The import validates every row before it writes any (`leads.services.importer`), so it reads the
file twice. Nothing here holds the file in memory: an upload is a file on disk (or a small
buffer), each pass reopens it through a decoder and the csv module, one row at a time.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from charset_normalizer import from_bytes
from django.utils.translation import gettext as _

# How much of a file the encoding is guessed from: enough for a few hundred rows.
SAMPLE_BYTES = 64 * 1024
# Single-byte Western encodings that a short sample cannot tell apart; such a file is read as
# Windows-1252, the superset spreadsheets on Windows write (and whose printable range covers
# Latin-1's), unless the sample does not decode in it.
WESTERN = {"cp1252", "latin_1", "iso8859_15", "cp1250", "iso8859_2", "mac_roman", "cp850", "cp437"}
# A replacement character in a row means bytes the detected encoding could not read: the row is
# rejected rather than imported mangled.
UNDECODABLE = "\ufffd"


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (no header, unreadable CSV); nothing is written."""

    def __init__(self, message: str, *, field: str = "file") -> None:
        super().__init__(message)
        self.field = field


@dataclass
class Row:
    line: int
    values: dict[str, str]


def detect_encoding(sample: bytes) -> str:
    """The encoding of a file from its first bytes: a BOM decides; then UTF-8 if the sample is
    valid UTF-8 (a multi-byte character cut at the sample's end allowed); else the
    charset-normalizer library's guess, Western guesses read as Windows-1252."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        pass
    else:
        if b"\x00" not in sample[:512] or not sample:
            return "utf-8"
    best = from_bytes(sample).best()
    if best is None:
        return "cp1252"
    name = codecs.lookup(best.encoding).name.replace("-", "_")
    if name in {codecs.lookup(w).name.replace("-", "_") for w in WESTERN}:
        try:
            sample.decode("cp1252")
        except UnicodeDecodeError:
            return best.encoding
        return "cp1252"
    return best.encoding


def _label(encoding: str) -> str:
    """The encoding as the report states it."""
    return {
        "utf-8": "UTF-8",
        "utf-8-sig": "UTF-8 with BOM",
        "utf-16": "UTF-16",
        "utf_16_le": "UTF-16 (little-endian, no BOM)",
        "utf_16_be": "UTF-16 (big-endian, no BOM)",
        "cp1252": "Windows-1252",
    }.get(encoding, encoding)


class CsvSource:
    """A CSV file to read row by row, as many times as asked. `raw` is a binary file object
    (seekable: an upload on disk or in memory), its bytes, a path, or text already decoded (a
    StringIO: its encoding is "text")."""

    def __init__(self, raw: IO[bytes] | IO[str] | str | Path | bytes) -> None:
        if isinstance(raw, (str, Path)):
            raw = Path(raw).open("rb")  # noqa: SIM115 - closed by close()
        if isinstance(raw, bytes):
            raw = io.BytesIO(raw)
        self.raw: Any = raw
        self.start = raw.tell() if hasattr(raw, "tell") else 0
        if isinstance(raw, io.TextIOBase):
            self.encoding = "text"
        else:
            sample = raw.read(SAMPLE_BYTES)
            self.encoding = detect_encoding(sample if isinstance(sample, bytes) else sample.encode())
        self.encoding_label = _label(self.encoding)

    def close(self) -> None:
        if isinstance(self.raw, io.BufferedReader):
            self.raw.close()

    def _text(self) -> IO[str]:
        self.raw.seek(self.start)
        if self.encoding == "text":
            return self.raw
        # Undecodable bytes become U+FFFD and reject their row (see UNDECODABLE).
        return io.TextIOWrapper(self.raw, encoding=self.encoding, errors="replace", newline="")

    def rows(self, expected: Iterable[str], required: Iterable[str]) -> Iterator[Row]:
        """(line number, {column: stripped value}) for each data row. A header naming none of
        the `required` columns means the file has no header row (its first row would be read
        as one and lost): an ImportFileError naming the expected columns.

        A short row reads as blank in its missing columns, cells past the header are ignored,
        blank lines skipped, and of two columns of one name the later one's cells are read."""
        text = self._text()
        try:
            reader = csv.reader(text)
            header = next(reader, None)
            if header is None:
                raise ImportFileError(_("The file is empty: expected a header row naming the columns."))
            last = {name: index for index, name in enumerate(header)}
            columns = {name.strip().lower().lstrip("\ufeff"): index for name, index in last.items() if name.strip()}
            if not set(columns) & set(required):
                raise ImportFileError(
                    _(
                        "The first row is not a header: it names none of %(required)s. "
                        "Expected a header row with some of these columns: %(expected)s."
                    )
                    % {"required": ", ".join(required), "expected": ", ".join(expected)}
                )
            width = len(header)
            for cells in reader:
                if not cells:
                    continue
                if len(cells) < width:
                    cells += [""] * (width - len(cells))
                yield Row(reader.line_num, {name: cells[index].strip() for name, index in columns.items()})
        except csv.Error as exc:
            raise ImportFileError(_("Not a readable CSV file: %(error)s.") % {"error": exc}) from exc
        finally:
            if isinstance(text, io.TextIOWrapper):
                text.detach()  # keep the underlying file open for the next pass


def dict_rows(source: Iterable[Any]) -> Iterator[Row]:
    """JSON rows, numbered as if line 1 were a header."""
    for index, row in enumerate(source, start=2):
        values = row if isinstance(row, dict) else {}
        yield Row(index, {k.strip().lower(): (str(v).strip() if v is not None else "") for k, v in values.items() if k})
