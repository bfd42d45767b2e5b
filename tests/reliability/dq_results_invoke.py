"""Invoke functions/dq_results/app.py's handler once, as the Lambda runtime would: the event from argv.

Run as a subprocess so its Powertools logger, tracer (X-Ray over UDP) and boto3 clients start fresh
from the environment the test gives it. Prints the returned summary as `SUMMARY <json>`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dq_platform.inference.local_server import LocalLambdaContext
from tests.support.aws import load_module

APP = Path(__file__).resolve().parents[2] / "functions" / "dq_results" / "app.py"

if __name__ == "__main__":
    module = load_module("dq_results_app", APP)
    summary = module.handler(json.loads(sys.argv[1]), LocalLambdaContext(function_name="dq-results"))
    print("SUMMARY " + json.dumps(summary))
