#!/usr/bin/env python3
"""Python reference implementation of the seed's (PENIN-Omega) persistence layer.

Written from the seed design document (shared/seeds/000_005e7c71197f97a8.txt); stdlib
only. Rust tests shell out to it to check that penin and Python read and write the same
state files byte for byte. A state file is json.dump(state, f, cls=StateEncoder, indent=2):
artifacts become {"__type__": "NumericVectorArtifact", "vector", "metadata"}, deques
{"__type__": "deque", "items", "maxlen"}; state_decoder turns the tags back on load.

Commands:
  seed_ref.py resave IN OUT  load IN with the tag decoder (whole document, every top-level
                             key kept) and dump it to OUT with StateEncoder, indent=2.
  seed_ref.py check IN       verify IN is a state (knowledge_base values are artifacts,
                             histories are deques) and print a one-line JSON summary
                             {"knowledge_base", "task_history", "score_history", "maxlen"};
                             otherwise exit 1 with a message on stderr.
  seed_ref.py write OUT      build the seed's demo state with the orchestrator and save it.
  seed_ref.py stats IN       orchestrator.load_state(IN); print get_statistics() as JSON.

Compressed snapshots (json.gz with the standard library's gzip; json.zst with the
zstandard package, which .ci/run installs: without it these exit 3):
  seed_ref.py check-gz IN [OUT]   check IN, read with gzip.open(IN, 'rt') and json.load;
  seed_ref.py check-zst IN [OUT]  the same, read through zstandard's stream reader. With OUT,
                                  also dump the loaded state to OUT as plain JSON (indent=2).
  seed_ref.py write-gz IN OUT     compress the bytes of IN into OUT in several gzip members
                                  (gzip.open(OUT, 'ab') once for each third of IN).
  seed_ref.py write-zst IN OUT    compress the bytes of IN into OUT in two zstd frames.
"""
import io, json, os, sys
from collections import deque


class NumericVectorArtifact:
    """A numeric vector with optional metadata."""
    def __init__(self, vector, metadata=None):
        self.vector = vector
        self.metadata = metadata if metadata is not None else {}

    def to_dict(self):
        return {"__type__": "NumericVectorArtifact", "vector": self.vector, "metadata": self.metadata}

    @classmethod
    def from_dict(cls, d):
        return cls(d["vector"], d.get("metadata", {}))


class StateEncoder(json.JSONEncoder):
    """Encodes artifacts and deques as __type__-tagged objects."""
    def default(self, o):
        if isinstance(o, NumericVectorArtifact):
            return o.to_dict()
        if isinstance(o, deque):
            return {"__type__": "deque", "items": list(o), "maxlen": o.maxlen}
        return super().default(o)


def state_decoder(d):
    """object_hook: turn tagged objects back into artifacts and deques."""
    t = d.get("__type__")
    if t == "NumericVectorArtifact":
        return NumericVectorArtifact.from_dict(d)
    if t == "deque":
        return deque(d["items"], maxlen=d.get("maxlen"))
    return d


class OmegaMetaOrchestrator:
    """Knowledge base plus bounded task and score histories, saved as JSON."""
    def __init__(self, history_maxlen=1000):
        self.history_maxlen = history_maxlen
        self.knowledge_base = {}
        self.task_history = deque(maxlen=history_maxlen)
        self.score_history = deque(maxlen=history_maxlen)

    def add_knowledge(self, key, artifact):
        self.knowledge_base[key] = artifact

    def add_task(self, task):
        self.task_history.append(task)

    def add_score(self, score):
        self.score_history.append(score)

    def save_state(self, filepath):
        parent = os.path.dirname(filepath)
        if parent:
            os.makedirs(parent, exist_ok=True)
        state = {"knowledge_base": self.knowledge_base, "task_history": self.task_history,
                 "score_history": self.score_history}
        with open(filepath, "w") as f:
            json.dump(state, f, cls=StateEncoder, indent=2)

    def load_state(self, filepath):
        if not os.path.exists(filepath):
            return False
        with open(filepath) as f:
            state = json.load(f, object_hook=state_decoder)
        self.knowledge_base = state.get("knowledge_base", {})
        # The file's maxlen wins; plain lists are accepted with the configured maxlen.
        for name in ("task_history", "score_history"):
            h = state.get(name, [])
            setattr(self, name, h if isinstance(h, deque) else deque(h, maxlen=self.history_maxlen))
        return True

    def get_statistics(self):
        scores = self.score_history
        return {"knowledge_base_size": len(self.knowledge_base),
                "task_history_size": len(self.task_history),
                "score_history_size": len(scores),
                "average_score": sum(scores) / len(scores) if scores else 0.0}


def load(path, opener=open):
    with opener(path) as f:
        return json.load(f, object_hook=state_decoder)


def gzip_opener(path):
    import gzip
    return gzip.open(path, "rt", encoding="utf-8")


def zstandard():
    try:
        import zstandard
    except ImportError:
        print("the zstandard package is not installed (pip install zstandard)", file=sys.stderr)
        sys.exit(3)
    return zstandard


def zstd_opener(path):
    raw = open(path, "rb")
    reader = zstandard().ZstdDecompressor().stream_reader(raw, read_across_frames=True,
                                                          closefd=True)
    return io.TextIOWrapper(reader, encoding="utf-8")


def thirds(data):
    n = len(data)
    return [data[: n // 3], data[n // 3: 2 * n // 3], data[2 * n // 3:]]


def check(path, opener=open):
    try:
        st = load(path, opener)
    except (OSError, ValueError) as e:
        return f"{path}: cannot load: {e}"
    if not isinstance(st, dict):
        return f"{path}: top level is not an object"
    kb = st.get("knowledge_base")
    if not isinstance(kb, dict):
        return f"{path}: knowledge_base is missing or not an object"
    for k, v in kb.items():
        if not isinstance(v, NumericVectorArtifact):
            return f"{path}: knowledge_base[{k!r}] is not a NumericVectorArtifact"
    for name in ("task_history", "score_history"):
        if not isinstance(st.get(name), deque):
            return f"{path}: {name} is missing or not a deque"
    th, sh = st["task_history"], st["score_history"]
    print(json.dumps({"knowledge_base": len(kb), "task_history": len(th),
                      "score_history": len(sh), "maxlen": [th.maxlen, sh.maxlen]}))
    return None


def main(argv):
    cmd, args = (argv[0], argv[1:]) if argv else (None, [])
    if cmd == "resave" and len(args) == 2:
        with open(args[1], "w") as f:
            json.dump(load(args[0]), f, cls=StateEncoder, indent=2)
    elif cmd == "check" and len(args) == 1:
        err = check(args[0])
        if err:
            print(err, file=sys.stderr)
            return 1
    elif cmd == "write" and len(args) == 1:
        o = OmegaMetaOrchestrator()
        o.add_knowledge("embedding_1", NumericVectorArtifact(vector=[0.1, 0.2, 0.3]))
        o.add_knowledge("embedding_2", NumericVectorArtifact(vector=[0.4, 0.5, 0.6]))
        o.add_task({"task_id": 1, "type": "evolution", "status": "completed"})
        o.add_task({"task_id": 2, "type": "evaluation", "status": "completed"})
        for s in (0.85, 0.87, 0.9):
            o.add_score(s)
        o.save_state(args[0])
    elif cmd in ("check-gz", "check-zst") and len(args) in (1, 2):
        opener = gzip_opener if cmd == "check-gz" else zstd_opener
        err = check(args[0], opener)
        if err:
            print(err, file=sys.stderr)
            return 1
        if len(args) == 2:
            with open(args[1], "w") as f:
                json.dump(load(args[0], opener), f, cls=StateEncoder, indent=2)
    elif cmd == "write-gz" and len(args) == 2:
        import gzip
        with open(args[0], "rb") as f:
            data = f.read()
        for part in thirds(data):
            with gzip.open(args[1], "ab") as f:
                f.write(part)
    elif cmd == "write-zst" and len(args) == 2:
        zstd = zstandard()
        with open(args[0], "rb") as f:
            data = f.read()
        half = len(data) // 2
        with open(args[1], "wb") as f:
            for part in (data[:half], data[half:]):
                f.write(zstd.ZstdCompressor().compress(part))
    elif cmd == "stats" and len(args) == 1:
        o = OmegaMetaOrchestrator()
        o.load_state(args[0])
        print(json.dumps(o.get_statistics()))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
