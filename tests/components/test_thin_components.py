"""Component and artifact modules import nothing from trainer/ when the pipeline is built (docs/architecture.md):
their executors import it when a step runs."""
import json
import subprocess
import sys

from tests.helpers import REPO_ROOT

COMPONENT_MODULES = ["components.anomaly_gate", "components.raw_log_example_gen.component",
                     "components.gbdt_residual.component", "components.optfusion", "components.versioned_pusher"]

# In a fresh interpreter: after importing each module in turn, the trainer modules loaded so far.
_PROBE = """
import importlib, json, sys
loaded = {}
for module in MODULES:
    importlib.import_module(module)
    loaded[module] = sorted(m for m in sys.modules if m == "trainer" or m.startswith("trainer."))
print(json.dumps(loaded))
"""


def test_importing_a_component_imports_no_trainer_module():
    code = f"MODULES = {COMPONENT_MODULES!r}\n{_PROBE}"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True,
                         env={"TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": ""}).stdout
    assert json.loads(out.strip().splitlines()[-1]) == {module: [] for module in COMPONENT_MODULES}
