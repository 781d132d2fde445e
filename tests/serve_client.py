"""Drives a running `raceloop serve` as an independent client (requests, websockets): every
route, its errors, WebSocket progress, stopping, and the tracked experiments.

Usage: serve_client.py BASE_URL   (http://127.0.0.1:PORT)
Prints JSON with what it saw; any assertion failure exits non-zero with the reason.
"""

import asyncio
import json
import os
import sys
import time

os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 reads file stores on request

import numpy as np
import onnxruntime as ort
import requests
import websockets
from mlflow.tracking import MlflowClient

BASE = sys.argv[1].rstrip("/")
WS = "ws" + BASE[len("http") :]
seen = {}


def post(path, body=None, data=None):
    return requests.post(BASE + path, json=body, data=data, timeout=30)


def expect_error(response, status, field=None):
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert body["error"], body
    if field is not None:
        assert body.get("field") == field, body
    return body["error"]


async def follow(kind, job_id, stop_after=None):
    """Every message of a job's WebSocket until the final one; optionally stops the job."""
    messages, stopped = [], False
    async with websockets.connect(f"{WS}/ws/{kind}/{job_id}") as ws:
        async for text in ws:
            message = json.loads(text)
            message["received_s"] = time.monotonic()
            messages.append(message)
            if stop_after and not stopped and message.get("epoch", 0) >= stop_after:
                r = post(f"/{kind}/stop/{job_id}")
                assert r.status_code == 200, r.text
                stopped = True
            if message["type"] == "final":
                break
    return messages


def start(kind, body):
    r = post(f"/{kind}/start", body)
    assert r.status_code == 200, (kind, r.status_code, r.text)
    answer = r.json()
    assert answer["status"] == "started" and len(answer["id"]) == 32, answer
    return answer["id"]


# The OpenAPI description lists every route.
spec = requests.get(BASE + "/openapi.json", timeout=10).json()
for kind in ["training", "evaluation", "collection"]:
    for route in [f"/{kind}/start", f"/{kind}/status/{{id}}", f"/{kind}/stop/{{id}}"]:
        assert route in spec["paths"], route
assert "/experiments" in spec["paths"] and "/experiments/{id}" in spec["paths"]

# Bad requests: named fields, the right codes, nothing started.
errors = {
    "malformed": expect_error(post("/training/start", data="{\"epochs\": 2,"), 400),
    "unknown_field": expect_error(post("/training/start", {"epoch": 2}), 400, "epoch"),
    "wrong_type": expect_error(post("/training/start", {"epochs": "two"}), 400, "epochs"),
    "traversal": expect_error(post("/training/start", {"dataset": "../../etc"}), 422, "dataset"),
    "absolute": expect_error(post("/evaluation/start", {"model": "/etc/passwd"}), 422, "model"),
    "missing_dataset": expect_error(post("/training/start", {"dataset": "0123abcd"}), 422, "dataset"),
    "missing_model": expect_error(post("/evaluation/start", {"model": "nope"}), 422, "model"),
    "neither": expect_error(post("/training/start", {}), 422, "dataset"),
    "bad_override": expect_error(
        post("/training/start", {"collect": {"episodes": 2}, "overrides": ["training.epochs=-1"]}),
        422,
        "overrides",
    ),
    "bad_track": expect_error(post("/collection/start", {"tracks": "Atlantis"}), 422, "tracks"),
    "too_many": expect_error(post("/collection/start", {"episodes": 10**9}), 422, "episodes"),
    "unknown_id": expect_error(requests.get(BASE + "/training/status/" + "0" * 32), 404, "id"),
    "unknown_id_stop": expect_error(post("/evaluation/stop/abc"), 404, "id"),
    "unknown_route": expect_error(requests.get(BASE + "/nothing/here"), 404),
}
big = post("/training/start", data=json.dumps({"overrides": ["x" * 100_000]}))
assert big.status_code == 413, big.status_code
seen["errors"] = errors

# Collection → dataset, streamed.
collection = start("collection", {"episodes": 6, "tracks": "Austin,Monza"})
messages = asyncio.run(follow("collection", collection))
final = messages[-1]
assert final["state"] == "finished", final
assert final["episodes_done"] == 6, final
dataset = final["dataset_dir"]
assert os.path.isfile(os.path.join(dataset, "manifest.json")), dataset
seen["collection_messages"] = len(messages)

# Training on it: a message at every epoch, then the model and its ONNX file.
training = start("training", {"dataset": dataset, "epochs": 3, "batch_size": 32, "name": "svc"})
status = requests.get(f"{BASE}/training/status/{training}", timeout=10).json()
assert status["state"] in ("queued", "running", "finished"), status
messages = asyncio.run(follow("training", training))
final = messages[-1]
assert final["type"] == "final" and final["state"] == "finished", final
epochs_seen = sorted({m["epoch"] for m in messages if m["epoch"]})
assert final["epoch"] == 3 and final["val_loss"] is not None, final
assert final["model_dir"] == "models/svc" and final["onnx"] == "models/svc/model.onnx", final
assert os.path.isfile(final["onnx"])
gaps = [b["received_s"] - a["received_s"] for a, b in zip(messages, messages[1:])]
assert max(gaps, default=0) <= 10, gaps
seen["training"] = {"messages": len(messages), "epochs_seen": epochs_seen, "max_gap_s": max(gaps, default=0)}

# The validation losses that the WebSocket showed (each message carries the last finished
# epoch's) are MLflow's metric history of the job's run, and the final one is epoch 3's.
streamed = {m["val_loss"] for m in messages if m["val_loss"] is not None}
history = MlflowClient(tracking_uri="file:./mlruns").get_metric_history(training, "val_loss")
tracked = {h.step: h.value for h in history}
assert sorted(tracked) == [1, 2, 3], tracked
for value in streamed:
    assert any(abs(value - t) <= 1e-9 * abs(t) for t in tracked.values()), (streamed, tracked)
assert abs(messages[-1]["val_loss"] - tracked[3]) <= 1e-9 * abs(tracked[3]), (messages[-1], tracked)

# The trained model's ONNX file runs in onnxruntime: [batch, 1080] ranges and [batch, 1] ego
# speeds (the main job's network reads its speed) → [batch, 2] commands.
session = ort.InferenceSession(final["onnx"], providers=["CPUExecutionProvider"])
assert [i.name for i in session.get_inputs()] == ["scan", "speed"], session.get_inputs()
rng = np.random.default_rng(0)
scans = rng.uniform(0.2, 30.0, size=(5, 1080)).astype(np.float32)
speeds = rng.uniform(0.0, 8.0, size=(5, 1)).astype(np.float32)
(action,) = session.run(["action"], {"scan": scans, "speed": speeds})
assert action.shape == (5, 2) and np.isfinite(action).all(), action
seen["val_loss_history"] = tracked

# Training that collects first, and an evaluation queued behind it.
collecting = start("training", {"collect": {"episodes": 4, "tracks": "Spa"}, "epochs": 1, "network": "Mlp"})
evaluation = start("evaluation", {"model": "svc", "tracks": "Austin", "episodes_per_track": 1})
queued = requests.get(f"{BASE}/evaluation/status/{evaluation}", timeout=10).json()
assert queued["state"] in ("queued", "running", "finished"), queued
final = asyncio.run(follow("training", collecting))[-1]
assert final["state"] == "finished" and final["dataset_dir"] and final["model_dir"], final
final = asyncio.run(follow("evaluation", evaluation))[-1]
assert final["state"] == "finished", final
assert 0.0 <= final["success_rate"] <= 1.0, final
assert os.path.isfile(os.path.join(final["output_dir"], "evaluation_summary.json")), final
seen["evaluation"] = {"queued_state": queued["state"], "success_rate": final["success_rate"]}

# Stopping a long training keeps its best epoch so far.
long = start("training", {"dataset": dataset, "epochs": 2000, "batch_size": 32, "name": "stopped"})
final = asyncio.run(follow("training", long, stop_after=2))[-1]
assert final["state"] == "stopped", final
assert 2 <= final["epoch"] < 2000 and final["model_dir"] == "models/stopped", final
# The stopped training's model directory is whole, and nothing half-written is left beside it.
for f in ["weights.safetensors", "model.json", "stats.json", "lineage.json", "model.onnx"]:
    assert os.path.isfile(os.path.join("models/stopped", f)), f
assert not [d for d in os.listdir("models") if d.startswith(".") or d.endswith(".tmp")], os.listdir("models")
seen["stopped_at_epoch"] = final["epoch"]

# The experiments list the jobs as tracked runs.
experiments = requests.get(BASE + "/experiments", timeout=10).json()["experiments"]
raceloop = [e for e in experiments if e["name"] == "raceloop"]
assert raceloop, experiments
runs = requests.get(f"{BASE}/experiments/{raceloop[0]['experiment_id']}", timeout=10).json()["runs"]
ids = {r["id"]: r for r in runs}
for job in [collection, training, collecting, evaluation, long]:
    assert job in ids, job
assert ids[training]["status"] == "FINISHED" and ids[long]["status"] == "KILLED"
assert "best_val_loss" in ids[training]["metrics"], ids[training]
expect_error(requests.get(BASE + "/experiments/nope"), 404, "id")
seen["runs"] = len(runs)

# A full queue refuses more jobs (429) and takes them again once they are stopped.
busy = start("training", {"dataset": dataset, "epochs": 2000, "batch_size": 32, "name": "busy"})
waiting = [start("collection", {"episodes": 1, "tracks": "IMS"}) for _ in range(16)]
full = expect_error(post("/collection/start", {"episodes": 1, "tracks": "IMS"}), 429)
for job in waiting + [busy]:
    kind = "training" if job == busy else "collection"
    assert post(f"/{kind}/stop/{job}").status_code == 200
final = asyncio.run(follow("collection", waiting[-1]))[-1]
assert final["state"] == "stopped", final
seen["queue_full"] = full
seen["dataset"] = dataset
print(json.dumps(seen))
