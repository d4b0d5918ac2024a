"""benchmarks/pipeline_scaling.py's verdicts on hand-made summaries (no pipeline runs)."""
from benchmarks import pipeline_scaling as ps


def _summary(rows, example_gen_s, transform_s, cpu=None):
    return {"rows": rows, "eg_transform_s": example_gen_s + transform_s,
            "seconds": {"RawLogExampleGen": example_gen_s, "Transform": transform_s},
            "cpu_seconds": {"RawLogExampleGen": cpu, "Transform": cpu}}


def test_one_pass_target_compares_with_the_per_field_run_of_the_same_size():
    fast = {**_summary(10_000, 6.0, 54.0, cpu=20.0), "per_field": _summary(10_000, 6.0, 154.0, cpu=60.0)}
    (line,) = ps.one_pass_lines([fast, _summary(100_000, 30.0, 100.0)])
    assert line.startswith("PASS: 10,000 rows") and "60.0 s / 160.0 s = 0.38x" in line
    assert "CPU 40.0 s against 120.0 s" in line
    slow = {**_summary(10_000, 6.0, 94.0), "per_field": _summary(10_000, 6.0, 154.0)}
    assert ps.one_pass_lines([slow])[0].startswith("FAIL: ")
