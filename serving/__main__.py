"""Starts the model server on the last pushed model, with TF Serving's flag names.

    python -m serving --model_name ctr --model_base_path tfx_output/serving_model --rest_api_port 8501

then, as for TF Serving:
    curl -d '{"instances": [{"I1": 3, "C1": "68fd1e64"}]}' http://localhost:8501/v1/models/ctr:predict
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The server's flags: TF Serving's names where TF Serving has the setting."""
    from serving.instances import DEFAULT_MAX_BATCH_SIZE  # not model_server: KServe reads sys.argv on import
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name", default="default", help="the model's name in the URLs (TF Serving's default: "
                                                                  "default)")
    parser.add_argument("--model_base_path", required=True,
                        help="folder of numbered model versions: the pipeline's serving_model/ (the newest is served)")
    parser.add_argument("--rest_api_port", type=int, default=8501, help="HTTP port (TF Serving's default: 8501)")
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0,
                        help="how often to look for a newer version (0: never)")
    parser.add_argument("--max_batch_size", type=int, default=DEFAULT_MAX_BATCH_SIZE,
                        help="the most instances one request may hold; more is answered 400")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Loads the newest version under --model_base_path and serves it until interrupted."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # KServe parses sys.argv when it is imported: show it none of ours (it has a --model_name of its own).
    sys.argv = sys.argv[:1]
    import kserve

    from serving.model_server import CtrModel

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    model = CtrModel(args.model_name, os.path.abspath(args.model_base_path), args.max_batch_size,
                     args.file_system_poll_wait_seconds)
    model.load()
    assert model.served is not None
    logging.info("serving %s version %d at http://localhost:%d/v1/models/%s:predict", args.model_name,
                 model.served.version, args.rest_api_port, args.model_name)
    server = kserve.ModelServer(http_port=args.rest_api_port, enable_grpc=False, workers=1,
                                enable_latency_logging=False)
    logging.getLogger("kserve.trace").setLevel(logging.WARNING)  # no log line per request (TF Serving logs none)
    server.start([model])


if __name__ == "__main__":
    main()
