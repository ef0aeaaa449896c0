"""The column separator of a CSV table saved by a spreadsheet of any locale."""

from __future__ import annotations

COLUMN_SEPARATORS = ",;\t"
"""Separators a CSV table may use: commas, semicolons (where the comma is the decimal mark) or tabs."""


def column_separator(lines: list[str]) -> str:
    """The separator of ``COLUMN_SEPARATORS`` that the table's header (its first non-blank line,
    which holds names, not numbers) holds most of; a comma when it holds none."""
    header = next((line for line in lines if line.strip()), "")
    return max(COLUMN_SEPARATORS, key=header.count)
