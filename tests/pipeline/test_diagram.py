"""The README's pipeline picture is generated from create_pipeline (pipeline/diagram.py), and stays so."""
import re

from pipeline import diagram
from tests.helpers import REPO_ROOT


def test_the_readme_diagram_is_the_default_pipeline_as_generated():
    with open(f"{REPO_ROOT}/README.md") as f:
        blocks = re.findall(r"```mermaid\n(.*?)\n```", f.read(), flags=re.S)
    assert blocks == [diagram.default_pipeline_diagram([])], "re-generate it: python -m pipeline.diagram"


def test_every_dependency_is_an_edge_and_resolvers_are_rounded():
    text = diagram.default_pipeline_diagram(["--model", "optfusion-hard"])
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    assert "    ChampionResolver([ChampionResolver])" in lines and "    Transform[Transform]" in lines
    assert "    Transform --> OptFusionSearch" in lines and "    OptFusionSearch --> OptFusionRetrain" in lines
    assert "    AnomalyGate --> OptFusionRetrain" in lines  # an order-only dependency is drawn too
    assert "    OptFusionRetrain --> Pusher" in lines and "    Evaluator --> Pusher" in lines
