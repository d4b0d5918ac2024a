"""The pipeline on Kubeflow Pipelines / Vertex AI Pipelines: the compiler (compile.py), the pipeline image
(Dockerfile), a local executor of a compiled spec (spec_runner.py) and the serving manifest (inference_service.yaml).
"""
