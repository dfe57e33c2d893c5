"""penin against Python json and orjson on the same state files, in one run.

  python3 bench/compare.py [--sizes 1000,10000,50000] [--dim 384] [--rounds 3]
                           [--data DIR] [--markdown FILE]

Installs orjson if it is missing, builds penin's bench_io example in release mode,
writes the workload files (once; they are kept in --data), then runs every contender on
every file, each operation in a fresh process, --rounds times, and prints the medians and
the ratios. --markdown also writes the tables to FILE (docs/benchmarks.md).
"""
import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PYREF = os.path.join(HERE, "pyref.py")
BENCH_IO = os.path.join(ROOT, "target", "release", "examples", "bench_io")
OPS = ["load", "save", "save-durable"]


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


def measure(argv):
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    fields = dict(part.split("=") for part in out.split())
    return float(fields["seconds"]), int(fields["maxrss_kb"])


def drop(path):
    if os.path.exists(path):
        os.unlink(path)


def run(sizes, dim, rounds, data):
    os.makedirs(data, exist_ok=True)
    results = {}  # (n, contender, op) -> (median seconds, max rss kb)
    for n in sizes:
        path = os.path.join(data, f"state_{n}x{dim}.json")
        if not os.path.exists(path):
            print(f"writing {path} ...", flush=True)
            subprocess.run([sys.executable, PYREF, "gen", path, str(n), str(dim)], check=True)
        size_mb = os.path.getsize(path) / 1e6
        samples = {}
        for r in range(rounds):
            for name, command in contenders().items():
                for op in OPS:
                    samples.setdefault((name, op), []).append(measure(command(op, path)))
                    drop(path + ".out")
            samples.setdefault(("raw write+fsync", "save-durable"), []).append(measure([BENCH_IO, "raw", path]))
            drop(path + ".out")
            print(f"N={n}: round {r + 1}/{rounds} done", flush=True)
        for key, values in samples.items():
            results[(n, *key)] = (statistics.median(v[0] for v in values), max(v[1] for v in values))
        results[(n, "size")] = size_mb
    return results


def tables(results, sizes, dim, rounds):
    lines = []
    for n in sizes:
        lines.append(f"### N = {n:,} artifacts × {dim} ({results[(n, 'size')]:.1f} MB)\n")
        lines.append("| contender | load s | save s (no fsync) | durable save s | peak RSS load MB | peak RSS save MB |")
        lines.append("|---|---:|---:|---:|---:|---:|")
        for name in ["penin", "python json", "orjson"]:
            load, rss_load = results[(n, name, "load")]
            save, rss_save = results[(n, name, "save")]
            durable, rss_durable = results[(n, name, "save-durable")]
            lines.append(f"| {name} | {load:.3f} | {save:.3f} | {durable:.3f} | {rss_load / 1024:.0f} "
                         f"| {max(rss_save, rss_durable) / 1024:.0f} |")
        raw = results[(n, "raw write+fsync", "save-durable")][0]
        lines.append(f"| raw write+fsync of penin's bytes | | | {raw:.3f} | | |")
        p = {op: results[(n, "penin", op)] for op in OPS}
        lines.append("")
        lines.append("| ratio | load | save | durable save | peak RSS (load / save) |")
        lines.append("|---|---:|---:|---:|---:|")
        for other in ["python json", "orjson"]:
            o = {op: results[(n, other, op)] for op in OPS}
            lines.append(f"| {other} ÷ penin (speed-up) | {o['load'][0] / p['load'][0]:.1f}× "
                         f"| {o['save'][0] / p['save'][0]:.1f}× | {o['save-durable'][0] / p['save-durable'][0]:.1f}× "
                         f"| {p['load'][1] / o['load'][1]:.2f} / {max(p['save'][1], p['save-durable'][1]) / max(o['save'][1], o['save-durable'][1]):.2f} |")
        lines.append(f"| penin durable save ÷ raw write+fsync | | | {p['save-durable'][0] / raw:.2f} | |")
        lines.append("")
    if len(sizes) > 1:
        small, large = min(sizes), max(sizes)
        lines.append(f"Linearity, time per artifact at N = {large:,} ÷ at N = {small:,} (penin): "
                     f"load {results[(large, 'penin', 'load')][0] / large / (results[(small, 'penin', 'load')][0] / small):.2f}, "
                     f"save {results[(large, 'penin', 'save')][0] / large / (results[(small, 'penin', 'save')][0] / small):.2f}.")
        lines.append("")
    lines.append(f"Medians of {rounds} rounds, each operation in a fresh process; peak RSS is the largest of the rounds.")
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
    parser.add_argument("--sizes", default="1000,10000,50000")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", default=os.path.join(ROOT, "target", "bench-data"))
    parser.add_argument("--markdown")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    ensure_orjson()
    build_penin()
    results = run(sizes, args.dim, args.rounds, args.data)
    text = tables(results, sizes, args.dim, args.rounds)
    header = f"Run of {datetime.date.today().isoformat()} on {machine()}.\n"
    print(header)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(header + "\n" + text + "\n")


if __name__ == "__main__":
    main()
