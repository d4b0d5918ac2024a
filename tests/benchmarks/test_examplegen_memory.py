"""benchmarks/examplegen_memory.py's check and table, on hand-written measurements (the runs themselves are the
benchmark's, not a test's)."""
from benchmarks import examplegen_memory


def _result(rows, input_mb, before, peak):
    return {"rows": rows, "input_mb": input_mb, "seconds": rows / 10_000, "rss_before_mb": before,
            "peak_rss_mb": peak}


def test_growth_within_1_5x_passes_and_beyond_fails():
    flat = [_result(100_000, 44.0, 900.0, 920.0), _result(2_300_000, 1010.0, 900.0, 929.0)]
    assert examplegen_memory.check(flat).startswith(
        "- PASS: RSS growth 29 MB at 1,010 MB of input against 20 MB at 44 MB (1.45x for 23x the rows")
    growing = [_result(100_000, 44.0, 900.0, 920.0), _result(2_300_000, 1010.0, 900.0, 1150.0)]
    assert examplegen_memory.check(growing).startswith("- FAIL: RSS growth 250 MB")


def test_the_section_has_one_row_per_size():
    section = examplegen_memory.render([_result(100_000, 44.0, 900.0, 920.0)], "cmd")
    assert section.startswith(examplegen_memory.SECTION_HEADING)
    assert "| 100,000 | 44.0 | 10.0 | 10,000 | 900 | 920 | 20 |" in section
