"""How errors about a user's file name its places and echo its values: briefly, never dumped."""

from dataclasses import dataclass
from pathlib import Path


def quote(value: object, width: int = 40) -> str:
    """``repr(value)`` cut to ``width`` characters: a file's values are echoed, never dumped."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def shown(names: list[str], most: int = 12) -> str:
    """Column names for a message: quoted, cut short, at most ``most`` of them."""
    more = f", ... ({len(names) - most} more)" if len(names) > most else ""
    return f"[{', '.join(map(quote, names[:most]))}{more}]"


@dataclass(frozen=True)
class Where:
    """The column timestamps are read from, for messages.

    Attributes
    ----------
    file, column
        The file, and the column's name as the file gives it.
    unit
        What the ``_line`` numbers count: ``"line"`` of a CSV file (the header is line 1)
        or ``"row"`` of a Parquet file (the first is row 1).
    """

    file: Path
    column: str
    unit: str = "line"

    def __str__(self) -> str:
        return f"{self.file}: column {self.column!r}"

    def at(self, line: int | None, value: object) -> str:
        """``line 7 ('01/02/2020')``: a value and where it is."""
        return f"{self.unit} {line} ({quote(value)})"
