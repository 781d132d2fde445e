"""Checks a raceloop `model.onnx` as an independent consumer: `onnx.checker`, then onnxruntime
on real scans at batch 1 and batch 7 against the actions that raceloop's `Policy` gave.

Usage: check_onnx.py MODEL.onnx SCANS.f32 ACTIONS.json SPEEDS.f32
SCANS.f32 holds [n, beams] little-endian f32 ranges (m); ACTIONS.json is [[steering, speed], ...];
SPEEDS.f32 holds [n] f32 ego speeds (m/s), fed to the graph's second input `speed` [batch, 1]
where it has one. Prints JSON: the graph's names and shapes and the largest differences per
batch size.
"""

import json
import sys

import numpy as np
import onnx
import onnxruntime as ort

model_path, scans_path, actions_path, speeds_path = sys.argv[1:5]
model = onnx.load(model_path)
onnx.checker.check_model(model, full_check=True)
expected = np.asarray(json.load(open(actions_path)), dtype=np.float64)
session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
inputs, (out,) = session.get_inputs(), session.get_outputs()
inp = inputs[0]
beams = inp.shape[1]
scans = np.fromfile(scans_path, dtype="<f4").reshape(-1, beams)
speeds = np.fromfile(speeds_path, dtype="<f4").reshape(-1, 1)
assert len(speeds) == len(scans), (len(speeds), len(scans))


def max_diff(batch):
    worst = 0.0
    for start in range(0, len(scans), batch):
        feed = {inp.name: scans[start : start + batch]}
        if len(inputs) == 2:
            feed[inputs[1].name] = speeds[start : start + batch]
        (action,) = session.run([out.name], feed)
        assert action.shape == (len(scans[start : start + batch]), 2), action.shape
        worst = max(worst, float(np.abs(action - expected[start : start + batch]).max()))
    return worst


print(
    json.dumps(
        {
            "input": inp.name,
            "input_shape": inp.shape,
            "inputs": [i.name for i in inputs],
            "speed_shape": inputs[1].shape if len(inputs) == 2 else None,
            "output": out.name,
            "output_shape": out.shape,
            "opset": model.opset_import[0].version,
            "metadata": sorted(p.key for p in model.metadata_props),
            "scans": len(scans),
            "max_abs_diff_batch1": max_diff(1),
            "max_abs_diff_batch7": max_diff(7),
        }
    )
)
