"""Reading one click-log file line by line, plain or compressed, where a broken file is an error naming it.

RawLogExampleGen and `serving.batch_score` read their input through `numbered_lines`. Beam's own decompression
(CompressionTypes.AUTO) ends a truncated gzip stream quietly, as if the file were shorter: an interrupted download
would lose rows without a word (../shared/cases/02). Python's stream readers raise instead, so this module opens the
file uncompressed through Beam's FileSystems (local paths, gs://, s3://) and decompresses it with them:

- `.gz` (gzip: concatenated members are read one after another, as `zcat` does), `.bz2`, `.xz` / `.lzma`;
- a stream that ends before its end marker, or that is corrupt, or a name that says compressed over plain content
  (or plain name over gzip content) -> InputFileError naming the file;
- an empty file -> InputFileError (unless `allow_empty`): a training log with no line is a failed export;
- a UTF-8 byte-order mark at the start of the file (written by some Windows tools) is not part of the first line.
"""
from __future__ import annotations

import bz2
import gzip
import lzma
import os
import zlib
from typing import IO, Any, Callable, Iterator

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

_GZIP_MAGIC = b"\x1f\x8b"
_BYTE_ORDER_MARK = "\ufeff".encode()
_OPENERS: dict[str, Callable[[IO[bytes]], Any]] = {  # raw file -> a binary stream of the decompressed bytes
    ".gz": lambda raw: gzip.GzipFile(fileobj=raw, mode="rb"),
    ".bz2": lambda raw: bz2.BZ2File(raw, mode="rb"),
    ".xz": lambda raw: lzma.LZMAFile(raw, mode="rb"),
    ".lzma": lambda raw: lzma.LZMAFile(raw, mode="rb"),
}
COMPRESSED_EXTENSIONS = tuple(_OPENERS)


class InputFileError(RuntimeError):
    """An input file that cannot be read whole; the message names the file and says what to do."""


def compression_of(path: str) -> str | None:
    """The compressed-file extension of `path` (".gz", ".bz2", ".xz", ".lzma"), or None for a plain text file."""
    extension = os.path.splitext(path)[1].lower()
    return extension if extension in _OPENERS else None


def numbered_lines(path: str, name: str | None = None, allow_empty: bool = False) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, raw line with its line end) of a text file, decompressed by its extension, without a
    leading byte-order mark.

    Args:
        path: the file (any filesystem Beam knows).
        name: how messages name it (a path relative to the input folder); defaults to `path`.
        allow_empty: an empty file is no lines instead of an error (scoring a log: nothing to score).

    Raises:
        InputFileError: a truncated or corrupt compressed file, a name and content that disagree, or an empty file.
    """
    name = name or path
    extension = compression_of(path)
    line_number = 0
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        if extension is None:
            stream = raw
        else:
            stream = _OPENERS[extension](raw)
        try:
            for line_number, line in enumerate(iter(stream.readline, b""), start=1):
                if line_number == 1:
                    if extension is None and line.startswith(_GZIP_MAGIC):
                        raise InputFileError(f"{name}: the content is gzip-compressed but the name does not end in "
                                             ".gz: rename it to end in .gz (or decompress it)")
                    line = line.removeprefix(_BYTE_ORDER_MARK)
                yield line_number, line
        except EOFError:
            raise InputFileError(
                f"{name}: the {extension} stream ends before its end marker, after line {line_number}: the file is "
                "truncated (an interrupted download or copy?). Fetch it again; the run used none of it.") from None
        except (OSError, zlib.error, lzma.LZMAError) as error:  # gzip.BadGzipFile is an OSError
            raise InputFileError(
                f"{name}: not a valid {extension} file after line {line_number} ({error}). If it is plain text, "
                f"rename it without {extension}; if it is compressed, it is corrupt: fetch it again.") from None
    if line_number == 0 and not allow_empty:
        raise InputFileError(f"{name}: the file is empty. A log file holds at least one line; remove it from the "
                             "input folder (or fix the export that wrote it).")
