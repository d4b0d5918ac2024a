"""benchmarks/optfusion_throughput.py: the compute ceiling, the fixed Hard architecture and the report (no runs)."""
import argparse

import pytest

from benchmarks import optfusion_throughput as bench
from trainer.models import optfusion


def test_ceiling_counts_three_multiply_adds_per_non_embedding_weight():
    # 1,000 weights of which a 10-id table x 40 = 400 are embedding: 600 weights, 6 x 600 = 3,600 FLOP/example.
    assert bench.ceiling(gflops=3.6e-6, parameters=1000, table_size=10) == pytest.approx(1.0)


def test_hard_architecture_keeps_every_connection_and_states_its_ops():
    architecture = bench.hard_architecture()
    assert sum(map(sum, architecture.connections)) == 33
    assert architecture.ops == list(bench.HARD_OPS)
    assert architecture.live_nodes() == list(range(len(optfusion.node_names())))


def _phase(speed: float, parameters: int = 241_000_000) -> dict:
    return {"examples_per_second": speed, "parameters": parameters, "peak_rss_mb": 1000.0}


def test_report_puts_speeds_against_the_bare_step_and_the_scaled_target():
    results = {
        "table_size": 11_000, "probe": {"float32_gflops": 210.0, "bfloat16_gflops": 300.0},
        "precisions": {"float32": {"bare": [_phase(100.0), _phase(110.0)], "bare_keras": _phase(90.0),
                                   "search": _phase(99.0)}},
        "retrain": {"float32": _phase(500.0, 41_000_000)}, "serving": {}, "l2": []}
    args = argparse.Namespace(steps=12, retrain_steps=60, rows=20_000, latency_calls=200, l2_table=0)
    text = bench.render(results, args, loads=[1.0])
    assert text.startswith(bench.SECTION_HEADING)
    # search / mean(bare) = 99 / 105 = 0.94 >= 0.90.
    assert "| float32 | 105.0 (100.0, 110.0) | 90.0 | 99.0 | 0.94 | PASS (>= 0.90) |" in text
    # 800 examples/s at 420 GFLOP/s is 400 at 210: 500 fails the absolute target and passes the scaled one.
    assert "| float32 | 500 | FAIL (>= 800) | PASS (>= 400) |" in text
