"""Reads raceloop's tracked runs back with the real `mlflow` package and prints them as JSON.

Usage: read_mlflow.py TRACKING_URI [EXPERIMENT]
TRACKING_URI is a file-store directory or an http:// server. For every run of EXPERIMENT
(default "raceloop"): name, status, params, full metric histories, tags and artifact paths.
"""
import json
import os
import sys

os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
import mlflow  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

uri = sys.argv[1]
if not uri.startswith("http"):
    uri = "file:" + os.path.abspath(uri)
client = MlflowClient(tracking_uri=uri)
experiment = client.get_experiment_by_name(sys.argv[2] if len(sys.argv) > 2 else "raceloop")


def artifacts(run_id, path=None):
    out = []
    for a in client.list_artifacts(run_id, path):
        out.extend(artifacts(run_id, a.path) if a.is_dir else [a.path])
    return out


runs = []
for r in client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"]):
    runs.append({
        "id": r.info.run_id,
        "name": r.info.run_name,
        "status": r.info.status,
        "params": r.data.params,
        "metrics": {
            k: [[m.step, m.value] for m in client.get_metric_history(r.info.run_id, k)]
            for k in r.data.metrics
        },
        "tags": r.data.tags,
        "artifacts": artifacts(r.info.run_id),
    })
print(json.dumps({"mlflow": mlflow.__version__, "runs": runs}))
