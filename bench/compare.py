"""penin against Python json and orjson on the same state files, in one run.

  python3 bench/compare.py [--shapes kb,tasks,scores,metadata,extra] [--sizes 1000,10000,50000]
                           [--dim 384] [--scale 1] [--rounds 3] [--data DIR] [--markdown FILE]

Shapes of state (each file written by Python's json.dump(..., cls=Encoder, indent=2)
through bench/pyref.py gen...):

  kb        the knowledge-base workload: N artifacts × DIM floats for each N of --sizes,
            1,000 tasks and 1,000 scores
  tasks     300,000 task records in an unbounded task history
  scores    1,000,000 scores in an unbounded score history
  metadata  10,000 artifacts × DIM floats with ~2 KB of metadata each
  extra     an extra top-level key holding 3,000,000 floats

(the last four on a background of 10 artifacts, 1,000 tasks and 1,000 scores). --scale
multiplies every count, --sizes included (--scale 0.05 checks the script in seconds).

Installs orjson if it is missing, builds penin's bench_io example in release mode, writes
the workload files (once; they are kept in --data, and rewritten when bench/pyref.py
changes), then runs every contender on every file, each operation in a fresh process,
--rounds times, and prints the medians, the ratios and the targets met or not. Every
operation must report the counts of the whole state, and penin's save must reproduce the
file byte for byte, or the run stops: a load that fails or reads part of the file is an
error, never a fast time. --markdown also writes the tables to FILE.
"""
import argparse
import datetime
import filecmp
import hashlib
import os
import platform
import statistics
import subprocess
import sys
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PYREF = os.path.join(HERE, "pyref.py")
BENCH_IO = os.path.join(ROOT, "target", "release", "examples", "bench_io")
OPS = ["load", "save", "save-durable"]
SHAPES = ["kb", "tasks", "scores", "metadata", "extra"]
COUNTS = ["artifacts", "tasks", "scores", "extra_keys", "extra_items"]
BACKGROUND = 10  # pyref.BACKGROUND: artifacts under the shapes beyond the knowledge base
KB_TARGET_N = 10_000  # the knowledge-base size the targets are stated at (before --scale)
LOAD_TARGET_SHAPES = 3.0  # penin loads each shape beyond the knowledge base this much faster
LOAD_TARGET_KB = 10.0  # ... and the knowledge base this much faster, than Python json


@dataclass
class Workload:
    key: str  # "kb" or the shape's name
    label: str  # what the targets call it
    nominal: int  # the count before --scale (for kb, the N of --sizes)
    title: str
    file: str
    gen: list  # pyref.py arguments after the output path
    counts: dict  # what every load of the file must find


def workloads(shapes, sizes, dim, scale):
    def scaled(n):
        return max(1, round(n * scale))

    def counts(artifacts=BACKGROUND, tasks=1000, scores=1000, extra_items=0):
        return {"artifacts": artifacts, "tasks": tasks, "scores": scores,
                "extra_keys": 1 if extra_items else 0, "extra_items": extra_items}

    out = []
    if "kb" in shapes:
        for nominal in sizes:
            n = scaled(nominal)
            out.append(Workload("kb", "knowledge base", nominal, f"N = {n:,} artifacts × {dim}", f"state_{n}x{dim}.json",
                                ["gen", n, dim], counts(artifacts=n)))
    for key, label, nominal, what, gen, counted in [
            ("tasks", "task-heavy", 300_000, "{n:,} task records, unbounded task history", "gen-tasks", "tasks"),
            ("scores", "score-heavy", 1_000_000, "{n:,} scores, unbounded score history", "gen-scores", "scores"),
            ("metadata", "metadata-heavy", 10_000, "{n:,} artifacts × {dim} with ~2 KB of metadata each",
             "gen-metadata", "artifacts"),
            ("extra", "extra-heavy", 3_000_000, "an extra top-level key of {n:,} floats", "gen-extra", "extra_items")]:
        if key in shapes:
            n = scaled(nominal)
            sized = [n, dim] if key == "metadata" else [n]
            out.append(Workload(key, label, nominal, f"{label}: {what.format(n=n, dim=dim)}",
                                f"{key}_{'x'.join(map(str, sized))}.json", [gen, *sized], counts(**{counted: n})))
    return out


def ensure_orjson():
    try:
        import orjson  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "orjson"], check=True)


def build_penin():
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "penin-orchestrator",
                    "--example", "bench_io"], cwd=ROOT, check=True)


def contenders():
    return {
        "penin": lambda op, f: [BENCH_IO, op, f],
        "python json": lambda op, f: [sys.executable, PYREF, op, f],
        "orjson": lambda op, f: [sys.executable, PYREF, op, f, "--orjson"],
    }


def measure(argv, expected):
    """Runs one operation; its seconds and peak RSS, once it has shown it read the whole state."""
    what = " ".join(os.path.basename(a) if a in (BENCH_IO, PYREF, sys.executable) else a for a in argv)
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"error: `{what}` failed (exit {proc.returncode}):\n{proc.stderr.strip()}")
    try:
        fields = dict(part.split("=", 1) for part in proc.stdout.split())
        seconds, rss = float(fields["seconds"]), int(fields["maxrss_kb"])
        found = {k: int(fields[k]) for k in COUNTS}
    except (KeyError, ValueError) as e:
        sys.exit(f"error: `{what}` printed no complete measurement ({e!r}):\n{proc.stdout.strip()}")
    if found != expected:
        wrong = ", ".join(f"{k} {found[k]:,} (expected {expected[k]:,})" for k in COUNTS if found[k] != expected[k])
        sys.exit(f"error: `{what}` did not load the whole state: {wrong}")
    return seconds, rss


def drop(path):
    if os.path.exists(path):
        os.unlink(path)


def generator_stamp():
    with open(PYREF, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:16]


def ensure_file(w, data):
    """Writes the workload's file unless it is there, written by this version of pyref.py."""
    path = os.path.join(data, w.file)
    stamp = f"{generator_stamp()} {' '.join(map(str, w.gen))}\n"
    stamp_path = path + ".stamp"
    if os.path.exists(path) and os.path.exists(stamp_path):
        with open(stamp_path) as f:
            if f.read() == stamp:
                return path
    print(f"writing {path} ...", flush=True)
    drop(stamp_path)
    subprocess.run([sys.executable, PYREF, w.gen[0], path, *map(str, w.gen[1:])], check=True)
    with open(stamp_path, "w") as f:
        f.write(stamp)
    return path


def run(loads, rounds, data):
    os.makedirs(data, exist_ok=True)
    paths = [ensure_file(w, data) for w in loads]
    results = {}  # (workload index, contender, op) -> (median seconds, max rss kb)
    for i, (w, path) in enumerate(zip(loads, paths)):
        samples = {}
        for r in range(rounds):
            for name, command in contenders().items():
                for op in OPS:
                    samples.setdefault((name, op), []).append(measure(command(op, path), w.counts))
                    if name == "penin" and op == "save" and r == 0 and not filecmp.cmp(path, path + ".out", shallow=False):
                        sys.exit(f"error: penin's re-save of {path} differs from the file (kept as {path}.out)")
                    drop(path + ".out")
            samples.setdefault(("raw write+fsync", "save-durable"), []).append(
                measure([BENCH_IO, "raw", path], w.counts))
            drop(path + ".out")
            print(f"{w.title}: round {r + 1}/{rounds} done", flush=True)
        for key, values in samples.items():
            results[(i, *key)] = (statistics.median(v[0] for v in values), max(v[1] for v in values))
        results[(i, "size")] = os.path.getsize(path) / 1e6
    return results


def tables(results, loads, rounds):
    lines = []
    for i, w in enumerate(loads):
        lines.append(f"### {w.title} ({results[(i, 'size')]:.1f} MB)\n")
        lines.append("| contender | load s | save s (no fsync) | durable save s | peak RSS load MB | peak RSS save MB |")
        lines.append("|---|---:|---:|---:|---:|---:|")
        for name in ["penin", "python json", "orjson"]:
            load, rss_load = results[(i, name, "load")]
            save, rss_save = results[(i, name, "save")]
            durable, rss_durable = results[(i, name, "save-durable")]
            lines.append(f"| {name} | {load:.3f} | {save:.3f} | {durable:.3f} | {rss_load / 1024:.0f} "
                         f"| {max(rss_save, rss_durable) / 1024:.0f} |")
        raw = results[(i, "raw write+fsync", "save-durable")][0]
        lines.append(f"| raw write+fsync of penin's bytes | | | {raw:.3f} | | |")
        p = {op: results[(i, "penin", op)] for op in OPS}
        lines.append("")
        lines.append("| ratio | load | save | durable save | peak RSS (load / save) |")
        lines.append("|---|---:|---:|---:|---:|")
        for other in ["python json", "orjson"]:
            o = {op: results[(i, other, op)] for op in OPS}
            lines.append(f"| {other} ÷ penin (speed-up) | {o['load'][0] / p['load'][0]:.1f}× "
                         f"| {o['save'][0] / p['save'][0]:.1f}× | {o['save-durable'][0] / p['save-durable'][0]:.1f}× "
                         f"| {p['load'][1] / o['load'][1]:.2f} / {max(p['save'][1], p['save-durable'][1]) / max(o['save'][1], o['save-durable'][1]):.2f} |")
        lines.append(f"| penin durable save ÷ raw write+fsync | | | {p['save-durable'][0] / raw:.2f} | |")
        lines.append("")
    linearity = per_artifact_ratio(results, loads)
    if linearity:
        (small, large), (load, save) = linearity
        lines.append(f"Linearity, time per artifact at N = {large:,} ÷ at N = {small:,} (penin): "
                     f"load {load:.2f}, save {save:.2f}.")
        lines.append("")
    if rounds == 1:
        lines.append("One round, each operation in a fresh process.")
    else:
        lines.append(f"Medians of {rounds} rounds, each operation in a fresh process; "
                     "peak RSS is the largest of the rounds.")
    return "\n".join(lines)


def per_artifact_ratio(results, loads):
    """((smallest N, largest N), (load, save)): penin's time per artifact at the largest
    knowledge base ÷ at the smallest, or None with fewer than two sizes."""
    kb = [(artifacts(w), i) for i, w in enumerate(loads) if w.key == "kb"]
    if len(kb) < 2:
        return None
    (small, i), (large, j) = min(kb), max(kb)

    def ratio(op):
        return results[(j, "penin", op)][0] / large / (results[(i, "penin", op)][0] / small)
    return (small, large), (ratio("load"), ratio("save"))


def artifacts(w):
    return w.counts["artifacts"]


def targets(results, loads):
    """Rows (target, figure, verdict) of the targets this run measured."""
    rows = []

    def t(i, name, op="load"):
        return results[(i, name, op)]

    def verdict(ok):
        return "met" if ok else "**not met**"

    for i, w in enumerate(loads):
        if w.key == "kb" and w.nominal == KB_TARGET_N:
            n = artifacts(w)
            where = f"knowledge base, N = {n:,}"
            py, orj, pen = t(i, "python json")[0], t(i, "orjson")[0], t(i, "penin")[0]
            rows.append((f"{where}: load ≥ {LOAD_TARGET_KB:g} × faster than Python json",
                         f"{py:.3f} s ÷ {pen:.3f} s = **{py / pen:.1f} ×**", verdict(py / pen >= LOAD_TARGET_KB)))
            rows.append((f"{where}: load ≥ 5 × faster than orjson (with its tag decoding)",
                         f"{orj:.3f} s ÷ {pen:.3f} s = **{orj / pen:.1f} ×**", verdict(orj / pen >= 5)))
            py_s, orj_s, pen_s = (t(i, name, "save")[0] for name in ("python json", "orjson", "penin"))
            rows.append((f"{where}: save (no fsync) faster than orjson",
                         f"{orj_s:.3f} s ÷ {pen_s:.3f} s = **{orj_s / pen_s:.1f} ×** faster", verdict(pen_s < orj_s)))
            rows.append((f"{where}: save (no fsync) ≥ 15 × faster than Python json",
                         f"{py_s:.3f} s ÷ {pen_s:.3f} s = **{py_s / pen_s:.1f} ×**", verdict(py_s / pen_s >= 15)))
            durable, raw = t(i, "penin", "save-durable")[0], results[(i, "raw write+fsync", "save-durable")][0]
            rows.append((f"{where}: durable save within 1.5 × of raw write+fsync of the same bytes",
                         f"{durable:.3f} s ÷ {raw:.3f} s = **{durable / raw:.2f} ×**", verdict(durable / raw <= 1.5)))
            pen_rss = max(t(i, "penin", op)[1] for op in OPS)
            py_rss = max(t(i, "python json", op)[1] for op in OPS)
            rows.append((f"{where}: peak memory loading or saving ≤ half of Python json's",
                         f"{pen_rss / 1024:.0f} MB ÷ {py_rss / 1024:.0f} MB = **{pen_rss / py_rss:.2f}**",
                         verdict(pen_rss <= py_rss / 2)))
    linearity = per_artifact_ratio(results, loads)
    if linearity:
        (small, large), (load, save) = linearity
        rows.append((f"knowledge base, linear: time per artifact at N = {large:,} within 1.2 × of N = {small:,}",
                     f"load {load:.2f} ×, save {save:.2f} ×", verdict(load <= 1.2 and save <= 1.2)))
    for i, w in enumerate(loads):
        if w.key == "kb":
            continue
        (py, py_rss), (pen, pen_rss) = t(i, "python json"), t(i, "penin")
        rows.append((f"{w.label}: load ≥ {LOAD_TARGET_SHAPES:g} × faster than Python json",
                     f"{py:.3f} s ÷ {pen:.3f} s = **{py / pen:.1f} ×**", verdict(py / pen >= LOAD_TARGET_SHAPES)))
        rows.append((f"{w.label}: peak RSS loading below Python json's",
                     f"{pen_rss / 1024:.0f} MB vs {py_rss / 1024:.0f} MB = **{pen_rss / py_rss:.2f}**",
                     verdict(pen_rss < py_rss)))
    return rows


def targets_table(rows):
    lines = ["| target | figure | |", "|---|---|---|"]
    lines += [f"| {target} | {figure} | {verdict} |" for target, figure, verdict in rows]
    return "\n".join(lines)


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{platform.system()} {platform.release()}, {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default=",".join(SHAPES),
                        help=f"comma-separated, of {','.join(SHAPES)} (default: all)")
    parser.add_argument("--sizes", default="1000,10000,50000", help="knowledge-base sizes (shape kb)")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every count, --sizes included")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", default=os.path.join(ROOT, "target", "bench-data"))
    parser.add_argument("--markdown")
    args = parser.parse_args()
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    unknown = [s for s in shapes if s not in SHAPES]
    if unknown or not shapes:
        parser.error(f"--shapes: unknown {', '.join(unknown) or 'nothing'}; choose from {','.join(SHAPES)}")
    if args.scale <= 0 or args.rounds < 1:
        parser.error("--scale must be positive and --rounds at least 1")
    sizes = [int(s) for s in args.sizes.split(",")]
    loads = workloads(shapes, sizes, args.dim, args.scale)
    ensure_orjson()
    build_penin()
    busy = os.getloadavg()[0]
    results = run(loads, args.rounds, args.data)
    text = tables(results, loads, args.rounds)
    rows = targets(results, loads)
    header = (f"Run of {datetime.date.today().isoformat()} on {machine()}; "
              f"load average {busy:.1f} at the start{'' if args.scale == 1 else f'; every count × {args.scale:g}'}.\n")
    print(header)
    print(text)
    if rows:
        print("\nTargets:\n")
        print(targets_table(rows))
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("## The last run\n\n" + header + "\n" + text + "\n")
            if rows:
                f.write(f"\n## Targets (medians of the run above)\n\n{targets_table(rows)}\n")


if __name__ == "__main__":
    main()
