"""benchmarks/optfusion_throughput.py: the compute ceiling, the fixed Hard architecture and the report (no runs)."""
import argparse

import pytest

from benchmarks import optfusion_throughput as bench
from trainer.optfusion import network


def test_ceiling_counts_three_multiply_adds_per_non_embedding_weight():
    # 1,000 weights of which a 10-id table x 40 = 400 are embedding: 600 weights, 6 x 600 = 3,600 FLOP/example.
    assert bench.ceiling(gflops=3.6e-6, parameters=1000, table_size=10) == pytest.approx(1.0)


def test_hard_architecture_keeps_every_connection_and_states_its_ops():
    architecture = bench.hard_architecture()
    assert sum(map(sum, architecture.connections)) == 33
    assert architecture.ops == list(bench.HARD_OPS)
    assert architecture.live_nodes() == list(range(len(network.node_names())))


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


def _l2_phase(ms: float, fault_mb: float = 0.0, cpu_ms: float = 0.0, sys_ms: float = 0.0) -> dict:
    return {"ms": ms, "cpu_ms": cpu_ms, "sys_ms": sys_ms, "fault_mb": fault_mb, "examples_per_second": 256e3 / ms}


def test_l2_cost_table_puts_each_variant_against_the_step_without_l2():
    runs = {"no_l2": {"step": [_l2_phase(1000.0), _l2_phase(1200.0)], "update": [_l2_phase(500.0, 1000.0)] * 2},
            "separate": {"step": [_l2_phase(1400.0)] * 2, "update": [_l2_phase(900.0, 2000.0, 700.0, 300.0)] * 2},
            "folded": {"step": [_l2_phase(1150.0)] * 2, "update": [_l2_phase(520.0, 1000.0)] * 2},
            "grads": {"update": [_l2_phase(200.0, 1000.0, 150.0, 100.0)] * 2}}
    lines = bench.render_l2_cost({"mixed_bfloat16": {"runs": runs, "steps": 12, "rounds": 2,
                                                     "nn_weights": 1000, "table_weights": 24,
                                                     "xla_loops": {"loops": 3, "passes": 12, "multithreaded": 3}}})
    table = [line for line in lines if line.startswith("| mixed_bfloat16")]
    assert len(table) == 3
    # no L2: mean of 1000 and 1200 ms, 256 examples in 1.1 s; the separate pass: (1400 - 1100) / 1400 = 21.4 %
    # of its step; the update
    # alone minus writing the gradients: 900 - 200 ms, 2000 - 1000 MB of page faults.
    assert table[0].split(" | ")[2:6] == ["232.7", "1100", "-", "0"]
    assert table[1].split(" | ")[3:] == ["1400", "21.4%", "0", "700", "550", "200", "1,000 |"]
    assert table[2].split(" | ")[3:5] == ["1150", "4.3%"]
    assert "3 element-wise loops over the variable (3 split over threads) making 12 passes" in lines[-1]
