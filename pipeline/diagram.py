"""The pipeline graph as a Mermaid flowchart, generated from `create_pipeline` (never drawn by hand): GitHub and most
Markdown viewers render it, and no graphics binary is needed.

    python -m pipeline.diagram                    # the default pipeline (generated Criteo-layout data, DeepFM)
    python -m pipeline.diagram --model resfusion  # any local_runner.py flags

The README's diagram is this command's output; tests/pipeline/test_diagram.py keeps them equal.
"""
from __future__ import annotations

import dataclasses
import sys

from tfx import v1 as tfx

RESOLVER_SHAPE = "([{}])"  # Mermaid's stadium: a resolver picks artifacts from MLMD, it computes nothing
STEP_SHAPE = "[{}]"


def mermaid(pipeline: tfx.dsl.Pipeline) -> str:
    """`flowchart TD` with one node per component (resolvers rounded) and an edge per dependency (data or order),
    in the pipeline's topological order."""
    lines = ["flowchart TD"]
    for node in pipeline.components:
        shape = RESOLVER_SHAPE if isinstance(node, tfx.dsl.Resolver) else STEP_SHAPE
        lines.append(f"    {node.id}{shape.format(node.id)}")
    for node in pipeline.components:
        for upstream in sorted(node.upstream_nodes, key=lambda n: n.id):
            lines.append(f"    {upstream.id} --> {node.id}")
    return "\n".join(lines)


def default_pipeline_diagram(argv: list[str]) -> str:
    """The diagram of the pipeline that `local_runner.py argv` runs (built, not run; no data is generated)."""
    import local_runner
    from pipeline.pipeline import create_pipeline

    # A remote --data is taken as it is (never read here); no metadata path: building the SQLite connection config
    # creates its folder.
    args = local_runner.parse_args(["--data", "gs://diagram/input", "--output-dir", "/diagram", *argv])
    return mermaid(create_pipeline(dataclasses.replace(local_runner.build_config(args), metadata_path=None)))


if __name__ == "__main__":
    print(default_pipeline_diagram(sys.argv[1:]))
