"""benchmarks/search_memory.py's summary and table on hand-made results (no training)."""
from benchmarks import search_memory

PARAMETERS = 1_048_576  # x 16 bytes = 16 MiB of model state


def run(examples_per_second: float, peak_over_imports_mb: float) -> dict:
    return {"examples_per_second": examples_per_second, "peak_over_imports_mb": peak_over_imports_mb,
            "rss_after_imports_mb": 800.0, "parameters": PARAMETERS}


def test_a_variant_keeps_its_largest_peak_and_mean_speed_against_the_model_state():
    summary = search_memory.summarize([run(100.0, 30.0), run(120.0, 26.0)])
    assert summary["examples_per_second"] == 110.0
    assert summary["peak_over_imports_mb"] == 30.0
    assert summary["state_ratio"] == 30.0 / 16.0


def test_the_targets_are_the_state_ratio_and_the_speed_against_the_keras_copy():
    keras_copy = search_memory.summarize([run(100.0, 30.0)])
    passing = {"keras_copy": keras_copy, "in_place": search_memory.summarize([run(96.0, 24.0)])}
    assert [line.split(":")[0] for line in search_memory.verdicts(passing)] == ["- PASS", "- PASS"]  # 1.5x, 0.96x
    failing = {"keras_copy": keras_copy, "in_place": search_memory.summarize([run(90.0, 24.5)])}
    assert [line.split(":")[0] for line in search_memory.verdicts(failing)] == ["- FAIL", "- FAIL"]  # 1.53x, 0.90x


def test_the_section_has_a_row_per_variant_and_the_profile():
    summary = {"keras_copy": search_memory.summarize([run(100.0, 30.0), run(100.0, 31.0)]),
               "in_place": search_memory.summarize([run(100.0, 20.0)]),
               "train_step": search_memory.summarize([run(150.0, 17.0)])}
    profiles = {"keras_copy": {"trainer/optfusion/fit.py:10 (keep)": 32.0, "a.py:1 (f)": 1.0, "b.py:2 (g)": 2.0},
                "in_place": {"trainer/optfusion/fit.py:10 (keep)": 16.0, "a.py:1 (f)": 3.0}}
    text = search_memory.render(summary, steps=12, table_size=11_237, command="python -m benchmarks.search_memory",
                                profiles=profiles)
    assert text.startswith(search_memory.SECTION_HEADING)
    assert "| keras_copy | 2 | 100.0 | 800 | 31 | 1.94x |" in text
    assert "| in_place | 1 | 100.0 | 800 | 20 | 1.25x |" in text
    assert "| train_step | 1 | 150.0 | 800 | 17 | 1.06x |" in text
    assert "| frame | keras_copy MB | in_place MB |" in text
    assert "| `trainer/optfusion/fit.py:10 (keep)` | 32 | 16 |" in text


def test_the_profile_keeps_the_largest_frames_of_any_variant_and_sums_the_rest():
    profiles = {"keras_copy": {"big": 30.0, "mid": 5.0, "small": 1.0}, "in_place": {"big": 10.0, "only_here": 8.0}}
    assert search_memory.profile_rows(profiles, top=2) == [
        ("big", [30.0, 10.0]), ("only_here", [0.0, 8.0]), ("other", [6.0, 0.0]), ("total", [36.0, 18.0])]
