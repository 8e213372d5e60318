"""CSV cells that are safe to open in a spreadsheet (OWASP "CSV injection").

A cell starting with =, +, -, @, a tab or a carriage return is read by Excel, LibreOffice and
Google Sheets as a formula (`=HYPERLINK(...)`, `@SUM(...)`); a leading apostrophe makes it
text, shown as typed. Numbers are written as they are: only text is neutralised, so a negative
amount stays a number. Every CSV export writes its rows through `safe_row`, and starts with a
UTF-8 byte order mark (`BOM`) so that spreadsheets read accents right.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_row(values: Iterable[Any]) -> list[Any]:
    return [safe_cell(value) for value in values]
