"""Every snapshot format side by side, with Python json and orjson on the seed JSON, in one run.

  python3 bench/formats.py [--sizes 10000,100000] [--dim 384] [--formats json,json.gz,...]
                           [--encrypted json.zst,arrow] [--rounds 3] [--data DIR]
                           [--skip-python] [--markdown FILE]

For each knowledge-base size N (N artifacts × DIM floats, 1,000 tasks, 1,000 scores: the
workload of bench/compare.py, written by Python through bench/pyref.py gen), the seed JSON
is converted by `penin convert` into every format of --formats, and into every format of
--encrypted inside an age envelope (to a key `penin keygen` writes in --data). Then, each
operation in a fresh process, --rounds times, interleaved (every contender once per round):

  load          whole process: start, read and decode the file, exit (wall clock)
  save          load, then encode and write to FILE.out without fsync (the timed part)
  save durable  load, then the atomic save: temporary, fsync, rename, directory fsync

The Python contenders (bench/pyref.py) load and save the seed JSON with json and with
orjson, and save through gzip.open (level 9, its default) as a Python user writes a
.json.gz; `cat FILE > /dev/null` is the floor of a load: reading the bytes from the page
cache through a small buffer; `dd` with one block the size of the arrow file reads its
bytes into one buffer of fresh memory, the floor of a load that keeps them without a
memory map. Every load must report the counts of the whole state or the run stops.
--skip-python leaves the Python contenders out (at 100,000 they take most of a round's
twenty minutes), and with them the targets measured against them.

Prints medians, ratios and the issue's targets met or not; --markdown writes the tables.
"""
import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PYREF = os.path.join(HERE, "pyref.py")
RELEASE = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release")
BENCH_IO = os.path.join(RELEASE, "examples", "bench_io")
PENIN = os.path.join(RELEASE, "penin")
COUNTS = ["artifacts", "tasks", "scores"]
TARGET_N = 10_000


def build():
    # Two runs: with --example, cargo builds the example alone.
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "penin-orchestrator",
                    "--example", "bench_io"], cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "penin-cli"], cwd=ROOT,
                   check=True)


def ensure_orjson():
    try:
        import orjson  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "orjson"], check=False)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--break-system-packages",
                        "orjson"], check=False)
        import orjson  # noqa: F401


def timed(argv, env=None, expected=None):
    """Runs argv; its wall-clock seconds and, for bench_io and pyref, the seconds it reports."""
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    what = " ".join(os.path.basename(a) for a in argv)
    if proc.returncode != 0:
        sys.exit(f"error: `{what}` failed (exit {proc.returncode}):\n{proc.stderr.strip()}")
    if expected is None:
        return wall, None
    try:
        fields = dict(part.split("=", 1) for part in proc.stdout.split())
        found = {k: int(fields[k]) for k in COUNTS}
        inner = float(fields["seconds"])
    except (KeyError, ValueError) as e:
        sys.exit(f"error: `{what}` printed no complete measurement ({e!r}):\n{proc.stdout.strip()}")
    if found != expected:
        sys.exit(f"error: `{what}` did not load the whole state: {found} (expected {expected})")
    return wall, inner


def prepare(data, n, dim, formats, encrypted, key):
    seed = os.path.join(data, f"kb{n}x{dim}.json")
    if not os.path.exists(seed):
        print(f"writing {seed} (Python json.dump)", flush=True)
        subprocess.run([sys.executable, PYREF, "gen", seed, str(n), str(dim)], check=True)
    files = {}
    for fmt in formats:
        files[fmt] = convert(seed, os.path.join(data, f"kb{n}x{dim}.{fmt}"), fmt, None)
    for fmt in encrypted:
        files[f"{fmt} + age"] = convert(seed, os.path.join(data, f"kb{n}x{dim}.{fmt}.age"), fmt, key)
    return seed, files


def convert(seed, out, fmt, key):
    if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(seed):
        print(f"writing {out}", flush=True)
        identity = ["--identity", key] if key else []
        subprocess.run([PENIN, *identity, "convert", seed, out, "--to", fmt], check=True,
                       capture_output=True)
    return out


def contenders(seed, files, key, python=True):
    """name -> (file, {op: argv}, env) for every contender (penin's alone unless python)."""
    env = dict(os.environ)
    env_key = dict(env, PENIN_IDENTITY=key) if key else env
    rows = {}
    for name, path in files.items():
        fmt = name.split(" ")[0]
        rows[f"penin {name}"] = (path, {op: [BENCH_IO, op, path, fmt]
                                        for op in ("load", "save", "save-durable")},
                                 env_key if "age" in name else env)
    if not python:
        return rows
    for label, extra in (("python json", []), ("python orjson", ["--orjson"])):
        rows[label] = (seed, {op: [sys.executable, PYREF, op, seed, *extra]
                              for op in ("load", "save", "save-durable")}, env)
    rows["python gzip + json.dump"] = (seed, {op: [sys.executable, PYREF, op, seed, "--gzip"]
                                              for op in ("save", "save-durable")}, env)
    return rows


def measure(rows, rounds, expected, cats):
    """{contender: {op: [wall seconds]}} plus the in-process seconds of saves, interleaved."""
    walls = {name: {} for name in rows}
    inner = {name: {} for name in rows}
    for _ in range(rounds):
        for name, (_, ops, env) in rows.items():
            for op, argv in ops.items():
                wall, seconds = timed(argv, env, expected)
                walls[name].setdefault(op, []).append(wall)
                inner[name].setdefault(op, []).append(seconds)
                out = argv[2] + ".out"
                if os.path.exists(out):
                    os.unlink(out)
        for name, path in cats.items():
            if name.startswith("cat "):
                argv = ["sh", "-c", f"cat '{path}' > /dev/null"]
            else:
                # dd with one block the size of the file: the bytes read into one buffer of
                # fresh memory, as a load that keeps them must.
                argv = ["dd", f"if={path}", "of=/dev/null", f"bs={os.path.getsize(path) + 1}",
                        "count=1", "status=none"]
            wall, _ = timed(argv)
            walls.setdefault(name, {}).setdefault("load", []).append(wall)
    return walls, inner


def med(xs):
    return statistics.median(xs) if xs else None


def table(n, dim, rows, walls, inner, rounds):
    lines = [f"### {n:,} × {dim} ({rounds} rounds, medians)", "",
             "| contender | file (MB) | load, whole process (s) | save (s) | save durable (s) |",
             "|---|---:|---:|---:|---:|"]
    figures = {}
    for name in walls:
        path = rows[name][0] if name in rows else None
        size = os.path.getsize(path) / 1e6 if path else None
        load = med(walls[name].get("load", []))
        save = med([x for x in inner.get(name, {}).get("save", []) if x is not None])
        durable = med([x for x in inner.get(name, {}).get("save-durable", []) if x is not None])
        figures[name] = {"size": size, "load": load, "save": save, "durable": durable}
        cell = lambda x, f="{:.3f}": "–" if x is None else f.format(x)  # noqa: E731
        lines.append(f"| {name} | {cell(size, '{:.1f}')} | {cell(load)} | {cell(save)} | {cell(durable)} |")
    return lines, figures


def targets(n, figures):
    out = []

    def check(text, ok, detail):
        out.append(f"| {n:,} | {text} | {detail} | {'met' if ok else 'NOT met'} |")

    f = figures
    if "penin arrow" in f and "penin json" in f:
        r = f["penin json"]["load"] / f["penin arrow"]["load"]
        check("arrow loads ≥ 5× faster than penin's JSON load", r >= 5, f"{r:.1f}×")
    if "penin arrow" in f and "cat arrow" in f:
        r = f["penin arrow"]["load"] / f["cat arrow"]["load"]
        check("arrow load within 2× of reading its bytes (cat)", r <= 2, f"{r:.2f}×")
    if "penin arrow" in f and "read arrow into memory (dd)" in f:
        r = f["penin arrow"]["load"] / f["read arrow into memory (dd)"]["load"]
        check("(not a target) arrow load against reading its bytes into memory (dd)", r <= 2,
              f"{r:.2f}×")
    if "penin arrow" in f and n == TARGET_N:
        size = f["penin arrow"]["size"]
        check("arrow file ≤ 35 MB at 10,000 × 384", size <= 35, f"{size:.1f} MB")
    if "penin json.gz" in f and "python gzip + json.dump" in f:
        r = f["python gzip + json.dump"]["save"] / f["penin json.gz"]["save"]
        check("json.gz saves ≥ 5× faster than Python gzip + json.dump", r >= 5, f"{r:.1f}×")
    for name in f:
        if name.startswith("penin ") and name.endswith(" + age"):
            plain = name[: -len(" + age")]
            if plain in f:
                r = f[name]["save"] / f[plain]["save"] - 1
                check(f"encryption adds ≤ 30% to a save ({plain.split(' ', 1)[1]})", r <= 0.30,
                      f"{100 * r:+.0f}%")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--formats", default="json,json.gz,json.zst,arrow")
    parser.add_argument("--encrypted", default="json.zst,arrow",
                        help="formats also measured inside an age envelope ('' for none)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", default=os.path.join(ROOT, "target", "bench-data"))
    parser.add_argument("--skip-python", action="store_true",
                        help="leave the Python contenders out")
    parser.add_argument("--markdown")
    args = parser.parse_args()
    os.makedirs(args.data, exist_ok=True)
    if not args.skip_python:
        ensure_orjson()
    build()
    formats = [f for f in args.formats.split(",") if f]
    encrypted = [f for f in args.encrypted.split(",") if f]
    key = None
    if encrypted:
        key = os.path.join(args.data, "bench.key")
        if not os.path.exists(key):
            subprocess.run([PENIN, "keygen", key], check=True, capture_output=True)
    out = [f"Measured {datetime.date.today()} on {platform.machine()}, {os.cpu_count()} cores, "
           f"{platform.python_implementation()} {platform.python_version()}.", ""]
    target_rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        seed, files = prepare(args.data, n, args.dim, formats, encrypted, key)
        expected = {"artifacts": n, "tasks": 1000, "scores": 1000}
        rows = contenders(seed, files, key, python=not args.skip_python)
        cats = {f"cat {fmt}": path for fmt, path in files.items()}
        if "arrow" in files:
            cats["read arrow into memory (dd)"] = files["arrow"]
        walls, inner = measure(rows, args.rounds, expected, cats)
        for name, path in cats.items():
            rows[name] = (path, {}, None)
        lines, figures = table(n, args.dim, rows, walls, inner, args.rounds)
        out += lines + [""]
        print("\n".join(lines), flush=True)
        target_rows += targets(n, figures)
    out += ["| N | target | measured | |", "|---|---|---|---|", *target_rows]
    print("\n".join(out[-(len(target_rows) + 2):]))
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
