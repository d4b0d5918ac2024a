"""ChampionEvaluator's executor: a baseline that is the candidate itself is left out, any other baseline stays."""
from tfx.types import standard_artifacts

from components.champion_evaluator import executor


def _model(uri: str, artifact_id: int = 0) -> standard_artifacts.Model:
    model = standard_artifacts.Model()
    model.uri = uri
    if artifact_id:
        model.id = artifact_id
    return model


def test_a_champion_that_is_the_candidate_is_dropped():
    examples = [standard_artifacts.Examples()]
    same_id = {executor.MODEL_KEY: [_model("/a", 7)], executor.BASELINE_KEY: [_model("/a", 7)], "examples": examples}
    assert executor.without_self_baseline(same_id) == {executor.MODEL_KEY: same_id[executor.MODEL_KEY],
                                                       "examples": examples}
    same_uri = {executor.MODEL_KEY: [_model("/a")], executor.BASELINE_KEY: [_model("/a")]}
    assert executor.BASELINE_KEY not in executor.without_self_baseline(same_uri)


def test_another_champion_or_none_is_kept():
    other = {executor.MODEL_KEY: [_model("/new", 8)], executor.BASELINE_KEY: [_model("/old", 7)]}
    assert executor.without_self_baseline(other) is other
    first_run = {executor.MODEL_KEY: [_model("/new", 8)], executor.BASELINE_KEY: []}  # no blessed model yet
    assert executor.without_self_baseline(first_run) is first_run
