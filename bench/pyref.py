"""The Python contenders of the benchmark, and the workload generator.

The seed's persistence as the Python tool does it (json.dump with a __type__ encoder,
json.load with an object_hook), and the same with orjson (no object hook: tags are decoded
by a walk afterwards). Written from the seed document; the same workload as
../shared/bench/python_seed.py.

  pyref.py gen OUT N DIM [SEED]          write a state of N artifacts of DIM floats,
                                         1,000 tasks and 1,000 scores
  pyref.py OP FILE [--orjson]            one timed operation, printing seconds=S maxrss_kb=K
     OP: load | save | save-durable      (save: load, then time the dump to FILE.out;
                                          save-durable: the same plus flush and fsync)
"""
import json
import os
import random
import resource
import sys
import time
from collections import deque


class Artifact:
    __slots__ = ("vector", "metadata")

    def __init__(self, vector, metadata=None):
        self.vector = vector
        self.metadata = metadata if metadata is not None else {}

    def to_dict(self):
        return {"__type__": "NumericVectorArtifact", "vector": self.vector, "metadata": self.metadata}


def default(o):
    if isinstance(o, Artifact):
        return o.to_dict()
    if isinstance(o, deque):
        return {"__type__": "deque", "items": list(o), "maxlen": o.maxlen}
    raise TypeError(f"cannot encode {type(o).__name__}")


class Encoder(json.JSONEncoder):
    def default(self, o):
        return default(o)


def hook(d):
    t = d.get("__type__")
    if t == "NumericVectorArtifact":
        return Artifact(d["vector"], d.get("metadata", {}))
    if t == "deque":
        return deque(d["items"], maxlen=d.get("maxlen"))
    return d


def make_state(n, dim, seed=7, tasks=1000, scores=1000, maxlen=1000):
    rnd = random.Random(seed)
    kb = {}
    for i in range(n):
        kb[f"embedding_{i}"] = Artifact([rnd.uniform(-1, 1) for _ in range(dim)], {"source": "bench", "index": i})
    th = deque(maxlen=maxlen)
    for i in range(tasks):
        th.append({"task_id": i, "type": rnd.choice(["evolution", "evaluation"]),
                   "status": "completed", "duration_s": rnd.random() * 10})
    sh = deque((rnd.random() for _ in range(scores)), maxlen=maxlen)
    return {"knowledge_base": kb, "task_history": th, "score_history": sh}


def load(path, use_orjson):
    if not use_orjson:
        with open(path) as f:
            return json.load(f, object_hook=hook)
    import orjson

    def walk(v):  # orjson has no object_hook: decode the tags bottom-up
        if isinstance(v, dict):
            return hook({k: walk(x) for k, x in v.items()})
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    with open(path, "rb") as f:
        return walk(orjson.loads(f.read()))


def save(state, path, use_orjson, durable):
    if use_orjson:
        import orjson
        with open(path, "wb") as f:
            f.write(orjson.dumps(state, default=default, option=orjson.OPT_INDENT_2))
            if durable:
                f.flush()
                os.fsync(f.fileno())
    else:
        with open(path, "w") as f:
            json.dump(state, f, cls=Encoder, indent=2)
            if durable:
                f.flush()
                os.fsync(f.fileno())


def main(argv):
    if argv[0] == "gen":
        out, n, dim = argv[1], int(argv[2]), int(argv[3])
        seed = int(argv[4]) if len(argv) > 4 else 7
        with open(out, "w") as f:
            json.dump(make_state(n, dim, seed), f, cls=Encoder, indent=2)
        return
    op, path = argv[0], argv[1]
    use_orjson = "--orjson" in argv
    start = time.perf_counter()
    state = load(path, use_orjson)
    loaded = time.perf_counter() - start
    if op == "load":
        seconds = loaded
    elif op in ("save", "save-durable"):
        start = time.perf_counter()
        save(state, path + ".out", use_orjson, op == "save-durable")
        seconds = time.perf_counter() - start
        os.unlink(path + ".out")
    else:
        sys.exit(f"unknown op {op}")
    # ru_maxrss is in kilobytes on Linux.
    print(f"seconds={seconds:.4f} maxrss_kb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}")


if __name__ == "__main__":
    main(sys.argv[1:])
