"""Independent reader of a raceloop episode MCAP (the `mcap` and `mcap-protobuf-support` packages).

Prints JSON: channels (topic -> [schema name, schema encoding, message encoding]), message counts
per topic, and a few decoded values for the Rust test to check.
"""
import json
import sys

from mcap.reader import make_reader
from mcap_protobuf.decoder import DecoderFactory

path = sys.argv[1]
factory = DecoderFactory()
out = {"channels": {}, "counts": {}, "scan_len": None, "first_ego": None, "last_ego": None,
       "first_control": None, "events": [], "track_entities": [], "tf_frames": set(), "log_times_sorted": True}
with open(path, "rb") as f:
    reader = make_reader(f)
    summary = reader.get_summary()
    for ch in summary.channels.values():
        schema = summary.schemas[ch.schema_id]
        out["channels"][ch.topic] = [schema.name, schema.encoding, ch.message_encoding]
    last_time = -1
    decoders = {}
    for schema, channel, message in reader.iter_messages(log_time_order=False):
        out["counts"][channel.topic] = out["counts"].get(channel.topic, 0) + 1
        if channel.message_encoding == "protobuf":
            dec = decoders.setdefault(schema.id, factory.decoder_for("protobuf", schema))
            msg = dec(message.data)
        else:
            msg = json.loads(message.data)
        if channel.topic == "/scan" and out["scan_len"] is None:
            out["scan_len"] = len(msg.ranges)
            out["scan_frame"] = msg.frame_id
            out["scan_angles"] = [msg.start_angle, msg.end_angle]
            out["scan_first_range"] = msg.ranges[0]
        elif channel.topic == "/ego/state":
            out["first_ego"] = out["first_ego"] or msg
            out["last_ego"] = msg
        elif channel.topic == "/control" and out["first_control"] is None:
            out["first_control"] = msg
        elif channel.topic == "/events":
            out["events"].append(msg.message)
        elif channel.topic == "/track":
            out["track_entities"] = [e.id for e in msg.entities]
        elif channel.topic == "/obstacles":
            out["obstacles"] = [
                {"id": e.id, "cubes": [[c.size.x, c.size.y] for c in e.cubes],
                 "cylinders": [c.size.x for c in e.cylinders],
                 "center": [(e.cubes or e.cylinders)[0].pose.position.x,
                            (e.cubes or e.cylinders)[0].pose.position.y]}
                for e in msg.entities]
        elif channel.topic == "/expert/plan":
            out["plan_entities"] = [e.id for e in msg.entities]
            out["plan_texts"] = [t.text for e in msg.entities for t in e.texts]
            out["plan_points"] = sum(len(l.points) for e in msg.entities for l in e.lines)
        elif channel.topic == "/tf":
            out["tf_frames"].add(f"{msg.parent_frame_id}->{msg.child_frame_id}")
        if channel.topic != "/control":
            out["log_times_sorted"] &= message.log_time >= last_time
            last_time = max(last_time, message.log_time)
out["tf_frames"] = sorted(out["tf_frames"])
print(json.dumps(out))
