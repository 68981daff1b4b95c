"""A data file's bytes: which files are data, how they are decompressed, what text they hold.

Data files end in ``.csv`` (also compressed: ``.csv.gz``, ``.csv.bz2``, ``.csv.xz``,
``.csv.zst``) or ``.parquet``. Text is UTF-8 (with or without a BOM) or, with a BOM,
UTF-16 or UTF-32; a file that is not valid UTF-8 is read as Latin-1, which maps every
byte to a character, so nothing is lost. Binary content (a NUL byte, or the signature of
a Parquet, zip or compressed file) is an error that says what the file looks like, never
its bytes.
"""

import bz2
import codecs
import gzip
import lzma
from collections.abc import Callable
from io import BufferedIOBase
from pathlib import Path

import pyarrow as pa

from attnviz.bars import BarDataError
from attnviz.sources.messages import quote

COMPRESSED: dict[str, Callable[[Path], BufferedIOBase]] = {
    ".gz": gzip.open,
    ".bz2": bz2.open,
    ".xz": lzma.open,
}
SUFFIXES = (".csv", *(f".csv{suffix}" for suffix in (*COMPRESSED, ".zst")), ".parquet")
# Enough of a file to find its encoding and header without reading all of it.
HEAD_BYTES = 64 * 1024
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# What a file that is not text most likely is, by its first bytes.
MAGIC = {
    b"PAR1": "a Parquet file",
    b"PK\x03\x04": "a zip archive (an .xlsx workbook?)",
    b"\x1f\x8b": "gzip-compressed data",
    b"BZh": "bzip2-compressed data",
    b"\xfd7zXZ": "xz-compressed data",
    b"\x28\xb5\x2f\xfd": "zstd-compressed data",
}


def data_suffix(path: Path) -> str | None:
    """The suffix that makes ``path`` a data file (``.csv.gz``), or ``None``."""
    name = path.name.lower()
    return next((s for s in SUFFIXES if name.endswith(s) and len(name) > len(s)), None)


def read_bytes(file: Path, size: int | None = None) -> bytes:
    """The first ``size`` bytes of the file, or all of them, decompressed as its suffix says.

    Raises
    ------
    BarDataError
        If the file cannot be read or decompressed.
    """
    try:
        with _binary(file) as stream:
            return stream.read(size)
    except (OSError, EOFError, lzma.LZMAError, pa.ArrowException) as error:
        verb = "read" if data_suffix(file) == ".csv" else "decompress"
        raise BarDataError(f"{file}: cannot {verb} it: {quote(str(error), 200)}") from None


def text_encoding(file: Path, head: bytes) -> str:
    """The text encoding of a CSV file from its first bytes.

    Raises
    ------
    BarDataError
        If the bytes are binary, saying what they look like.
    """
    for bom, encoding in BOMS:
        if head.startswith(bom):
            return encoding
    kind = next((kind for magic, kind in MAGIC.items() if head.startswith(magic)), None)
    if kind is not None or b"\x00" in head:
        raise BarDataError(
            f"{file}: not CSV text: it looks like {kind or 'binary data (it has NUL bytes)'}"
        )
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8"


def as_utf8(file: Path, encoding: str) -> Path | bytes:
    """The file's text as UTF-8 for polars: the file itself when it already is.

    Raises
    ------
    BarDataError
        If the text is not valid in ``encoding``.
    """
    if encoding == "utf-8" and data_suffix(file) == ".csv":
        return file  # polars reads it from disk, never all of it in memory at once
    data = read_bytes(file)
    if encoding == "utf-8":
        return data
    try:
        return data.decode(encoding).encode("utf-8")
    except UnicodeDecodeError as error:
        raise BarDataError(f"{file}: not valid {encoding} text: {error.reason}") from None


def _binary(file: Path) -> BufferedIOBase:
    """The file's bytes, decompressed as its suffix says."""
    suffix = data_suffix(file) or ""
    if suffix == ".csv.zst":
        # pyarrow is untyped: its stream is a buffered file of bytes, read and closed like one.
        stream: BufferedIOBase = pa.input_stream(str(file), compression="zstd")
        return stream
    opener = COMPRESSED.get(Path(suffix).suffix)
    return opener(file) if opener else file.open("rb")
