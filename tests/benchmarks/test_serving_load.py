"""The model-server load test's report: the targets are judged on the numbers of one run."""
from benchmarks import serving_load


def _results(server_p50: float, rss_growth: float, errors: int, optfusion_p50: float) -> dict:
    cell = {"requests": 100, "p50_ms": server_p50, "p99_ms": 9.0, "rps": 200.0, "errors": errors}
    return {
        "in_process": {("deepfm", 1, "signature"): (3.0, 4.0), ("deepfm", 256, "signature"): (20.0, 25.0),
                       ("deepfm", 1, "transform"): (1.0, 1.5), ("optfusion-hard", 1, "signature"): (optfusion_p50, 6.0),
                       ("optfusion-hard", 1, "transform"): (1.0, 1.5)},
        "server": [{"batch": b, "concurrency": c, **cell} for b in (1, 256) for c in (1, 8)],
        "rss": {"after_1000": 500.0, "after_10000": 500.0 + rss_growth, "errors": 0}, "row_ms": 0.3,
    }


def test_every_target_passes_at_its_bound():
    section = serving_load.render(_results(server_p50=5.0, rss_growth=50, errors=0, optfusion_p50=4.5), 100, 1)
    assert section.startswith(serving_load.SECTION) and "FAIL" not in section
    assert section.count("- PASS: ") == 4


def test_each_target_fails_past_its_bound():
    section = serving_load.render(_results(server_p50=5.01, rss_growth=51, errors=1, optfusion_p50=4.51), 100, 1)
    assert section.count("- FAIL: ") == 4
    assert "DeepFM batch-1 p50 through the server 5.01 ms <= in-process 3.00 ms + 2 ms" in section
    assert "errors 4 = 0" in section  # 1 per server cell
    assert "OptFusion-Hard batch-1 in-process 1.50x DeepFM's" in section


def test_with_a_core_each_the_latency_target_compares_the_pinned_server_with_the_pinned_floor():
    results = _results(server_p50=9.0, rss_growth=0, errors=0, optfusion_p50=3.0)  # unpinned: 9.0 > 3.0 + 2
    cell = {"requests": 100, "p50_ms": 6.9, "p99_ms": 8.0, "rps": 140.0, "errors": 0}
    results["pinned"] = {"floor": (4.9, 6.0), "server": cell}
    section = serving_load.render(results, 100, 1)
    assert "- PASS: DeepFM batch-1 p50 through the server 6.90 ms <= in-process 4.90 ms + 2 ms (each on one core)" \
        in section
    assert "| server, 1 core (client on the other) | 1 | 1 | 100 | 6.90 |" in section
    results["pinned"]["server"] = {**cell, "p50_ms": 6.91, "errors": 2}
    section = serving_load.render(results, 100, 1)
    assert "- FAIL: DeepFM batch-1 p50" in section and "- FAIL: errors 2 = 0" in section
