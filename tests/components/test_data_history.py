"""The resolver strategies of components/data_history.py that pick artifacts by their properties."""
import pytest
from tfx.types import standard_artifacts

from components.data_history import LatestIfAnyStrategy, latest_spans


def _examples(artifact_id: int, span: int, version: int = 0, span_as_text: bool = False):
    artifact = standard_artifacts.Examples()
    artifact.id = artifact_id
    if span_as_text:  # older ExampleGens wrote span as a string
        artifact.set_string_custom_property("span", str(span))
    else:
        artifact.set_int_custom_property("span", span)
    artifact.set_int_custom_property("version", version)
    return artifact


def test_the_window_holds_the_newest_artifact_of_each_of_the_latest_spans():
    day1, day2, day2_rerun, day3_v0, day3_v1, day4 = (
        _examples(1, 1), _examples(2, 2), _examples(5, 2), _examples(4, 3, version=1), _examples(6, 3, version=0),
        _examples(3, 4, span_as_text=True))
    everything = [day1, day2, day2_rerun, day3_v0, day3_v1, day4]
    # Span 3: version 1 beats a later-written version 0; span 2: the re-ingested copy (higher id).
    assert latest_spans(everything, 3) == [day4, day3_v0, day2_rerun]
    assert latest_spans(everything, 10) == [day4, day3_v0, day2_rerun, day1]
    assert latest_spans([day1], 2) == [day1]
    with pytest.raises(ValueError, match="at least one span"):
        latest_spans(everything, 0)


def test_latest_if_any_gives_the_newest_artifact_or_none_on_a_first_run():
    old, new = standard_artifacts.TransformCache(), standard_artifacts.TransformCache()
    old.id, new.id = 3, 7
    strategy = LatestIfAnyStrategy()
    assert strategy.resolve_artifacts(None, {"cache": [new, old]}) == {"cache": [new]}
    assert strategy.resolve_artifacts(None, {"cache": []}) == {"cache": []}
