"""Measures `raceloop serve` under load (not part of the tests): the latency of the status
route under 50 concurrent clients while a training runs, and what that load costs the
training's samples/s.

Usage: serve_load.py BASE_URL DATASET [EPOCHS]
Runs the same training twice through the service, without and with 50 clients polling
`GET /training/status/{id}` as fast as they can, and prints JSON with the figures.
"""

import json
import statistics
import sys
import threading
import time

import requests

BASE, DATASET = sys.argv[1].rstrip("/"), sys.argv[2]
EPOCHS = int(sys.argv[3]) if len(sys.argv) > 3 else 2
CLIENTS = 50


def train(name):
    r = requests.post(BASE + "/training/start", json={"dataset": DATASET, "epochs": EPOCHS, "name": name}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["id"]


def wait(job):
    while True:
        s = requests.get(f"{BASE}/training/status/{job}", timeout=30).json()
        if s["state"] in ("finished", "failed", "stopped"):
            assert s["state"] == "finished", s
            return s
        time.sleep(0.5)


def status_load(job, stop, latencies):
    session = requests.Session()
    while not stop.is_set():
        t = time.perf_counter()
        r = session.get(f"{BASE}/training/status/{job}", timeout=30)
        latencies.append(time.perf_counter() - t)
        assert r.status_code == 200


quiet = wait(train("load-quiet"))
job = train("load-busy")
stop, latencies = threading.Event(), []
threads = [threading.Thread(target=status_load, args=(job, stop, latencies)) for _ in range(CLIENTS)]
started = time.perf_counter()
for t in threads:
    t.start()
busy = wait(job)
stop.set()
for t in threads:
    t.join()
elapsed = time.perf_counter() - started
latencies.sort()
ms = lambda q: 1e3 * latencies[min(len(latencies) - 1, int(q * len(latencies)))]
print(
    json.dumps(
        {
            "clients": CLIENTS,
            "requests": len(latencies),
            "requests_per_s": len(latencies) / elapsed,
            "status_latency_ms": {"p50": ms(0.5), "p90": ms(0.9), "p99": ms(0.99), "max": 1e3 * latencies[-1]},
            "mean_latency_ms": 1e3 * statistics.fmean(latencies),
            "training_samples_per_s_quiet": quiet["samples_per_s"],
            "training_samples_per_s_under_load": busy["samples_per_s"],
            "throughput_cost": 1 - busy["samples_per_s"] / quiet["samples_per_s"],
        },
        indent=1,
    )
)
