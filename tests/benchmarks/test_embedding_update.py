"""benchmarks/embedding_update.py's table on hand-made results (no training)."""
from benchmarks import embedding_update


def test_the_table_gives_the_lazy_over_dense_ratio_of_each_size():
    dense = [{"examples_per_second": 30.0, "examples_per_cpu_second": 20.0, "peak_rss_mb": 9000.0,
              "parameters": 281_000_000}, {"examples_per_second": 50.0, "examples_per_cpu_second": 20.0,
                                           "peak_rss_mb": 8000.0, "parameters": 281_000_000}]
    lazy = [{"examples_per_second": 100.0, "examples_per_cpu_second": 50.0, "peak_rss_mb": 7000.0,
             "parameters": 281_000_000}] * 2
    results = {1_000_000: {"dense": embedding_update.mean_runs(dense), "lazy": embedding_update.mean_runs(lazy)}}
    text = embedding_update.render(results, steps=8, command="python -m benchmarks.embedding_update")
    assert text.startswith(embedding_update.SECTION_HEADING)
    # dense: mean 40 examples/s of 30 and 50, the larger peak; lazy / dense 2.5x per wall and per CPU second
    assert "| 1,000,000 | 281,000,000 | 40.0 | 100.0 | 2.50x | 20.0 | 50.0 | 2.50x | 9,000 | 7,000 |" in text
