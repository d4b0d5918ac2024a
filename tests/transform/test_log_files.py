"""transform/log_files.py: every way a log file can be broken is an error naming it; good files read whole."""
import bz2
import gzip
import lzma

import pytest

from transform import log_files

LINES = [b"1\ta\n", b"0\tb\n", b"1\tc"]  # the last line without a newline


def _lines(path, **kwargs):
    return list(log_files.numbered_lines(str(path), "day/" + path.name, **kwargs))


@pytest.mark.parametrize("suffix, compress", [
    (".tsv", lambda b: b), (".tsv.gz", gzip.compress), (".tsv.bz2", bz2.compress), (".tsv.xz", lzma.compress)])
def test_plain_and_compressed_files_read_whole(tmp_path, suffix, compress):
    path = tmp_path / f"log{suffix}"
    path.write_bytes(compress(b"".join(LINES)))
    assert _lines(path) == [(1, LINES[0]), (2, LINES[1]), (3, LINES[2])]


def test_concatenated_gzip_members_read_one_after_another(tmp_path):
    path = tmp_path / "log.gz"  # as `cat a.gz b.gz > log.gz` makes, and zcat reads
    path.write_bytes(gzip.compress(LINES[0] + LINES[1]) + gzip.compress(LINES[2]))
    assert [line for _, line in _lines(path)] == LINES


@pytest.mark.parametrize("suffix, compress", [(".gz", gzip.compress), (".bz2", bz2.compress), (".xz", lzma.compress)])
def test_truncated_compressed_file_is_an_error_naming_it(tmp_path, suffix, compress):
    whole = compress(b"".join(b"%d\tsome row text\n" % i for i in range(5000)))
    path = tmp_path / f"log{suffix}"
    path.write_bytes(whole[:len(whole) * 2 // 3])  # an interrupted download
    with pytest.raises(log_files.InputFileError) as error:
        _lines(path)
    message = str(error.value)
    assert message.startswith(f"day/log{suffix}: the {suffix} stream ends before its end marker, after line ")
    assert "truncated" in message and "Fetch it again" in message


def test_corrupt_and_mislabelled_files_are_errors_naming_them(tmp_path):
    plain_named_gz = tmp_path / "log.gz"
    plain_named_gz.write_bytes(b"".join(LINES))
    with pytest.raises(log_files.InputFileError, match=r"^day/log.gz: not a valid .gz file after line 0 .*"
                                                       r"If it is plain text, rename it without .gz"):
        _lines(plain_named_gz)
    gzip_named_plain = tmp_path / "log.tsv"
    gzip_named_plain.write_bytes(gzip.compress(b"".join(LINES)))
    with pytest.raises(log_files.InputFileError, match="^day/log.tsv: the content is gzip-compressed but the name"):
        _lines(gzip_named_plain)
    corrupt = bytearray(gzip.compress(b"".join(LINES) * 100))
    corrupt[20:30] = b"\0" * 10
    (tmp_path / "corrupt.gz").write_bytes(bytes(corrupt))
    with pytest.raises(log_files.InputFileError, match="^day/corrupt.gz: not a valid .gz file"):
        _lines(tmp_path / "corrupt.gz")


def test_empty_file_is_an_error_unless_allowed(tmp_path):
    for name, content in (("empty.tsv", b""), ("empty.tsv.gz", gzip.compress(b""))):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(log_files.InputFileError, match=f"^day/{name}: the file is empty"):
            _lines(path)
        assert _lines(path, allow_empty=True) == []


def test_a_leading_byte_order_mark_is_not_part_of_the_first_line(tmp_path):
    path = tmp_path / "log.tsv"
    path.write_bytes("\ufeff".encode() + b"".join(LINES))
    assert [line for _, line in _lines(path)] == LINES
