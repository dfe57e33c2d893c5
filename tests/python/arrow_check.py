#!/usr/bin/env python3
"""Checks penin's arrow snapshot with pyarrow, without penin: docs/format.md, "The arrow snapshot".

  arrow_check.py ARROW JSON   open ARROW with pyarrow and compare it with JSON, the same state
                              in the seed JSON (loaded with the standard library):
                              * the schema metadata: penin.format is penin-state, penin.version 1;
                              * the footer's custom metadata: penin.xxh3_128 is the XXH3-128 of
                                every byte before the footer (recomputed with the xxhash package);
                              * the columns key, vector, metadata, extra: the knowledge base's
                                keys in order, every float bit for bit, the metadata objects;
                              * penin.state: the histories and the other top-level keys.
                              Prints a one-line JSON summary; exit 1 with a message on a mismatch.

Exit 3 when pyarrow or xxhash is not installed (.ci/run installs both with pip).
"""
import json, struct, sys


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def need(module):
    try:
        return __import__(module)
    except ImportError:
        print(f"the {module} package is not installed (pip install {module})", file=sys.stderr)
        sys.exit(3)


def bits(x):
    return struct.pack("<d", float(x))


def canonical(value):
    """A JSON value as text, for comparing values that hold NaN (NaN != NaN)."""
    return json.dumps(value, allow_nan=True)


def main(arrow_path, json_path):
    pa = need("pyarrow")
    xxhash = need("xxhash")
    import pyarrow.ipc  # noqa: F401

    data = open(arrow_path, "rb").read()
    with open(json_path) as f:
        state = json.load(f)

    reader = pa.ipc.open_file(pa.BufferReader(data))
    schema_meta = reader.schema.metadata or {}
    if schema_meta.get(b"penin.format") != b"penin-state":
        fail(f"penin.format is {schema_meta.get(b'penin.format')!r}")
    if schema_meta.get(b"penin.version") != b"1":
        fail(f"penin.version is {schema_meta.get(b'penin.version')!r}")

    # The checksum, from the footer's custom metadata as pyarrow reads it.
    footer_meta = reader.metadata or {}
    written = footer_meta.get(b"penin.xxh3_128")
    if written is None:
        fail(f"the footer has no penin.xxh3_128: {footer_meta!r}")
    footer_len = int.from_bytes(data[-10:-6], "little")
    footer_start = len(data) - 10 - footer_len
    if data[-6:] != b"ARROW1" or data[footer_start - 8:footer_start] != b"\xff\xff\xff\xff\0\0\0\0":
        fail("the file does not end as an Arrow IPC file does")
    computed = xxhash.xxh3_128_hexdigest(data[:footer_start]).encode()
    if written != computed:
        fail(f"checksum: the footer says {written!r}, the bytes hash to {computed!r}")

    table = reader.read_all()
    if table.column_names != ["key", "vector", "metadata", "extra"]:
        fail(f"columns: {table.column_names}")
    kb = state.get("knowledge_base", {})
    keys = table.column("key").to_pylist()
    if keys != list(kb):
        fail(f"keys: {keys[:5]}... != {list(kb)[:5]}...")
    vectors = table.column("vector").to_pylist()
    metadata = table.column("metadata").to_pylist()
    extra = table.column("extra").to_pylist()
    floats = 0
    for key, vector, meta, more in zip(keys, vectors, metadata, extra):
        artifact = kb[key]
        expected = artifact["vector"]
        if len(vector) != len(expected) or any(bits(a) != bits(b) for a, b in zip(vector, expected)):
            fail(f"{key}: vector {vector[:4]}... != {expected[:4]}...")
        floats += len(vector)
        if canonical(json.loads(meta)) != canonical(artifact.get("metadata", {})):
            fail(f"{key}: metadata {meta} != {artifact.get('metadata')}")
        rest = {k: v for k, v in artifact.items() if k not in ("__type__", "vector", "metadata")}
        if canonical(json.loads(more) if more is not None else {}) != canonical(rest):
            fail(f"{key}: extra {more} != {rest}")

    rest = json.loads(schema_meta[b"penin.state"])
    expected_rest = {k: v for k, v in state.items() if k != "knowledge_base"}
    rest.pop("knowledge_base", None)
    if canonical(rest) != canonical(expected_rest):
        fail(f"penin.state differs from the JSON's histories and other keys")

    print(json.dumps({"artifacts": len(keys), "floats": floats,
                      "batches": reader.num_record_batches, "xxh3_128": written.decode(),
                      "vector_type": str(table.schema.field("vector").type)}))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        fail(__doc__)
    main(sys.argv[1], sys.argv[2])
