"""The Python contenders of the benchmark, and the workload generators.

The seed's persistence as the Python tool does it (json.dump with a __type__ encoder,
json.load with an object_hook), and the same with orjson (no object hook: tags are decoded
by a walk afterwards). Written from the seed document; the knowledge-base workload is the
same as ../shared/bench/python_seed.py.

  pyref.py gen OUT N DIM [SEED]          knowledge base: N artifacts of DIM floats,
                                         1,000 tasks and 1,000 scores (maxlen 1000)
  pyref.py gen-tasks OUT N [SEED]        N task records in an unbounded task history
  pyref.py gen-scores OUT N [SEED]       N scores in an unbounded score history
  pyref.py gen-metadata OUT N DIM [SEED] N artifacts of DIM floats with ~2 KB of metadata each
  pyref.py gen-extra OUT N [SEED]        an extra top-level key holding a list of N floats
                                         (the last three on the background of `gen OUT 10 384`)
  pyref.py OP FILE [--orjson|--gzip]     one timed operation, printing seconds=S maxrss_kb=K
     OP: load | save | save-durable      and the counts the load found: artifacts= tasks=
                                         scores= extra_keys= extra_items=
                                         (save: load, then time the dump to FILE.out;
                                          save-durable: the same plus flush and fsync;
                                          --gzip: saves through gzip.open, at its default
                                          level 9, as a Python user writes a .json.gz)
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


# The shapes beyond the knowledge base sit on a small background state: 10 artifacts,
# 1,000 tasks and 1,000 scores, as `gen OUT 10 384` writes it.
BACKGROUND = 10
SEED_KEYS = ("knowledge_base", "task_history", "score_history")
EPOCH = 1732500000.0  # 2024-11-25, the time stamps' origin
TASK_TYPES = ["evolution", "evaluation", "mutation", "selection"]
TASK_STATUS = ["completed"] * 17 + ["failed", "timeout", "cancelled"]
# Words for metadata text: non-ASCII of 2, 3 and 4 UTF-8 bytes (written as \uXXXX and
# surrogate pairs) and every escape the writer names (" \ \n \r \t \b \f).
WORDS = ["memory", "agent", "vector", "recall", "plan", "goal", "café", "naïve", "Zürich",
         "résumé", "über", "façade", "São Paulo", "Kraków", "東京", "данные", "ευρετήριο",
         "emoji 🚀", "tab\there", 'say "hi"', "back\\slash", "line\nbreak", "50 %", "a/b",
         "x<y>z", "€12", "crlf\r\n", "page\fbreak", "bs\b"]
TAGS = ["science", "code", "notes", "web", "paper", "chat", "log", "todo", "draft", "archive",
        "ö-tag", "日本"]


def task_record(rnd, i):
    """A finished task as an orchestrator logs it: about 310 bytes in the indent=2 file
    (12 lines at 6 to 10 spaces of indentation)."""
    created = EPOCH + i * 0.5 + rnd.random() * 0.1
    duration = rnd.expovariate(1 / 3.0)
    status = rnd.choice(TASK_STATUS)
    return {"task_id": i, "type": rnd.choice(TASK_TYPES), "status": status,
            "created_at": round(created, 3), "finished_at": round(created + duration, 3),
            "params": {"gen": rnd.randrange(500), "pop": rnd.choice([32, 64, 128])},
            "result": f"fit={rnd.random():.3f}" if status == "completed" else status,
            "duration_s": round(duration, 4)}


def make_tasks_state(n, seed=7):
    state = make_state(BACKGROUND, 384, seed)
    rnd = random.Random(seed + 1)
    state["task_history"] = deque((task_record(rnd, i) for i in range(n)), maxlen=None)
    return state


def make_scores_state(n, seed=7):
    state = make_state(BACKGROUND, 384, seed)
    rnd = random.Random(seed + 1)
    state["score_history"] = deque((rnd.random() for _ in range(n)), maxlen=None)
    return state


def words(rnd, n):
    return " ".join(rnd.choice(WORDS) for _ in range(n))


def metadata(rnd, i):
    """An artifact's metadata of about 2 KB in the file: nested objects, lists, numbers,
    escaped and non-ASCII text."""
    at = round(EPOCH + i * 7.5, 3)
    return {
        "source": "bench",
        "index": i,
        "title": words(rnd, 6),
        "summary": words(rnd, 40),
        "lang": rnd.choice(["en", "fr", "de", "ja", "pt", "ru"]),
        "tags": rnd.sample(TAGS, 5),
        "created_at": at,
        "tokens": rnd.randrange(50, 4000),
        "provenance": {
            "url": f"https://example.org/docs/{i}?q={rnd.randrange(10**6)}&lang=fr#sec-{rnd.randrange(20)}",
            "path": f"C:\\data\\corpus\\{i:06d}.txt",
            "sha256": f"{rnd.getrandbits(256):064x}",
            "agent": {"name": f"agent-{rnd.randrange(16)}", "version": "0.3.1", "pid": rnd.randrange(1, 65536)},
        },
        "scores": {"relevance": rnd.random(), "novelty": rnd.random(), "confidence": round(rnd.random(), 3)},
        "history": [{"op": rnd.choice(["insert", "update", "merge"]), "at": at + k,
                     "by": f"agent-{rnd.randrange(16)}"} for k in range(3)],
        "flags": {"pinned": rnd.random() < 0.1, "reviewed": rnd.random() < 0.5, "expires": None},
        "dims": [rnd.randrange(384) for _ in range(8)],
    }


def make_metadata_state(n, dim, seed=7):
    state = make_state(n, dim, seed)
    rnd = random.Random(seed + 1)
    for i, artifact in enumerate(state["knowledge_base"].values()):
        artifact.metadata = metadata(rnd, i)
    return state


def make_extra_state(n, seed=7):
    state = make_state(BACKGROUND, 384, seed)
    rnd = random.Random(seed + 1)
    state["reward_trace"] = [round(rnd.random(), 6) for _ in range(n)]
    return state


def counts(state):
    extra = [v for k, v in state.items() if k not in SEED_KEYS]
    return {"artifacts": len(state["knowledge_base"]), "tasks": len(state["task_history"]),
            "scores": len(state["score_history"]), "extra_keys": len(extra),
            "extra_items": sum(len(v) for v in extra if isinstance(v, list))}


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


def save(state, path, use_orjson, durable, use_gzip=False):
    if use_gzip:
        import gzip
        with open(path, "wb") as raw:
            with gzip.open(raw, "wt") as f:
                json.dump(state, f, cls=Encoder, indent=2)
            if durable:
                raw.flush()
                os.fsync(raw.fileno())
    elif use_orjson:
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
    makers = {"gen": (make_state, 2), "gen-tasks": (make_tasks_state, 1),
              "gen-scores": (make_scores_state, 1), "gen-metadata": (make_metadata_state, 2),
              "gen-extra": (make_extra_state, 1)}
    if argv[0] in makers:
        make, arity = makers[argv[0]]
        out, sizes, rest = argv[1], [int(a) for a in argv[2:2 + arity]], argv[2 + arity:]
        seed = int(rest[0]) if rest else 7
        # Written to a temporary name first, so that an interrupted run leaves no partial file
        # that a later run would take for a workload.
        with open(out + ".tmp", "w") as f:
            json.dump(make(*sizes, seed), f, cls=Encoder, indent=2)
        os.replace(out + ".tmp", out)
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
        save(state, path + ".out", use_orjson, op == "save-durable", "--gzip" in argv)
        seconds = time.perf_counter() - start
        os.unlink(path + ".out")
    else:
        sys.exit(f"unknown op {op}")
    # ru_maxrss is in kilobytes on Linux.
    found = " ".join(f"{k}={v}" for k, v in counts(state).items())
    print(f"seconds={seconds:.4f} maxrss_kb={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss} {found}")


if __name__ == "__main__":
    main(sys.argv[1:])
