"""Top-k search over an already-loaded knowledge base: penin against numpy, in one run.

  python3 bench/search.py [--sizes 10000,100000] [--dim 384] [--k 10] [--queries 200]
                          [--rounds 3] [--data DIR] [--markdown FILE]

For each size N, the state kbNxDIM.arrow in --data (written from bench/pyref.py's seed JSON
with `penin convert` when missing; --data /work/bench-data reuses the files there) is
searched for the top K under cosine similarity, --queries pseudo-random queries per round,
--rounds rounds, the contenders interleaved in every round:

  penin          the search kernel in process: crates/penin-orchestrator/examples/bench_search
                 loads the state once, builds the norm index, times each query (median)
  numpy          this process: the matrix (pyarrow) and its normalised rows computed once;
                 each query times q / |q|, M @ q, np.argpartition of the top K, their sort
  penin run      a `penin run` session on a copy of the state (loaded once): each query
                 timed from writing its line {"op":"search",...} to reading its answer; the
                 table gives the median and what it adds to "penin" of the same round

Prints medians (the median of the rounds' medians), ratios and the issue's targets met or
not (penin <= 2 ms at 10,000 and <= 20 ms at 100,000, no slower than numpy, run adds <= 1
ms); --markdown writes the tables with the commit and the load average.
"""
import argparse
import datetime
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PYREF = os.path.join(HERE, "pyref.py")
RELEASE = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release")
BENCH = os.path.join(RELEASE, "examples", "bench_search")
PENIN = os.path.join(RELEASE, "penin")
TARGETS_MS = {10_000: 2.0, 100_000: 20.0}


def build():
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "penin-orchestrator",
                    "--example", "bench_search"], cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--release", "--quiet", "-p", "penin-cli"], cwd=ROOT,
                   check=True)


def prepare(data, n, dim):
    arrow = os.path.join(data, f"kb{n}x{dim}.arrow")
    if os.path.exists(arrow):
        return arrow
    seed = os.path.join(data, f"kb{n}x{dim}.json")
    if not os.path.exists(seed):
        print(f"writing {seed} (Python json.dump)", flush=True)
        subprocess.run([sys.executable, PYREF, "gen", seed, str(n), str(dim)], check=True)
    print(f"writing {arrow}", flush=True)
    subprocess.run([PENIN, "convert", seed, arrow, "--to", "arrow"], check=True,
                   capture_output=True)
    return arrow


class Numpy:
    def __init__(self, arrow):
        import numpy as np
        import pyarrow.ipc as ipc
        self.np = np
        table = ipc.open_file(arrow).read_all()
        vectors = table.column("vector").combine_chunks()
        m = np.asarray(vectors.values).reshape(len(vectors), -1)
        self.normalised = m / np.linalg.norm(m, axis=1)[:, None]
        self.keys = table.column("key").to_pylist()

    def run(self, queries, k):
        np = self.np
        times = []
        for q in queries:
            start = time.perf_counter()
            q = np.asarray(q)
            scores = self.normalised @ (q / np.linalg.norm(q))
            best = np.argpartition(-scores, k)[:k]
            best = best[np.argsort(-scores[best])]
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1e3, [self.keys[i] for i in best]


class Session:
    """A `penin run` on a copy of the state, kept open for every round."""

    def __init__(self, arrow, workdir):
        state = os.path.join(workdir, "state.arrow")
        shutil.copyfile(arrow, state)
        self.proc = subprocess.Popen([PENIN, "--state", state, "run", "--sync", "never"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self.ask('{"op":"stats"}')  # answered once the state is loaded

    def ask(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            sys.exit("error: penin run ended")
        return json.loads(answer)

    def run(self, queries, k):
        times = []
        for q in queries:
            line = json.dumps({"op": "search", "vector": q, "k": k})
            start = time.perf_counter()
            answer = self.ask(line)
            times.append(time.perf_counter() - start)
            if not answer.get("ok"):
                sys.exit(f"error: penin run answered {answer}")
        return statistics.median(times) * 1e3, [r["key"] for r in answer["results"]]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def kernel(arrow, queries, k):
    proc = subprocess.run([BENCH, arrow, str(queries), str(k), "cosine"], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        sys.exit(f"error: bench_search failed:\n{proc.stderr}")
    return json.loads(proc.stdout)


def loadavg():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data", default=os.path.join(ROOT, "target", "bench-data"))
    parser.add_argument("--markdown")
    args = parser.parse_args()
    os.makedirs(args.data, exist_ok=True)
    build()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    load_before = loadavg()
    out = [f"Measured {datetime.date.today()} on {platform.machine()}, {os.cpu_count()} cores, "
           f"commit {commit}, load average {load_before} (1, 5, 15 min) at the start; "
           f"top-{args.k} cosine, {args.queries} queries per round, {args.rounds} rounds, "
           f"medians.", "",
           "| N × dim | penin (ms) | numpy (ms) | penin / numpy | penin run (ms) | run adds (ms) |",
           "|---|---|---|---|---|---|"]
    checks = []
    rnd = random.Random(11)
    for n in [int(s) for s in args.sizes.split(",")]:
        arrow = prepare(args.data, n, args.dim)
        numpy = Numpy(arrow)
        queries = [[rnd.uniform(-1, 1) for _ in range(args.dim)] for _ in range(args.queries)]
        figures = {"penin": [], "numpy": [], "run": [], "adds": []}
        with tempfile.TemporaryDirectory(prefix="penin-search-bench-") as workdir:
            session = Session(arrow, workdir)
            # The answers agree: penin run's top keys are numpy's.
            _, numpy_keys = numpy.run(queries[:1], args.k)
            _, run_keys = session.run(queries[:1], args.k)
            if numpy_keys != run_keys:
                sys.exit(f"error: penin run found {run_keys}, numpy {numpy_keys}")
            for r in range(args.rounds):
                penin = kernel(arrow, args.queries, args.k)["median_ms"]
                numpy_ms, _ = numpy.run(queries, args.k)
                run_ms, _ = session.run(queries, args.k)
                figures["penin"].append(penin)
                figures["numpy"].append(numpy_ms)
                figures["run"].append(run_ms)
                figures["adds"].append(run_ms - penin)
                print(f"{n} round {r + 1}: penin {penin:.3f} ms, numpy {numpy_ms:.3f} ms, "
                      f"run {run_ms:.3f} ms", flush=True)
            session.close()
        med = {name: statistics.median(xs) for name, xs in figures.items()}
        out.append(f"| {n:,} × {args.dim} | {med['penin']:.3f} | {med['numpy']:.3f} | "
                   f"{med['penin'] / med['numpy']:.2f} | {med['run']:.3f} | {med['adds']:.3f} |")
        target = TARGETS_MS.get(n)
        if target is not None:
            checks.append((f"{n:,}: penin ≤ {target:g} ms", med["penin"] <= target,
                           f"{med['penin']:.3f} ms"))
        checks.append((f"{n:,}: penin no slower than numpy", med["penin"] <= med["numpy"],
                       f"{med['penin'] / med['numpy']:.2f}×"))
        checks.append((f"{n:,}: run adds ≤ 1 ms", med["adds"] <= 1.0, f"{med['adds']:.3f} ms"))
    out += ["", f"Load average at the end: {loadavg()}.", "",
            "| target | measured | |", "|---|---|---|"]
    out += [f"| {text} | {figure} | {'met' if ok else 'NOT met'} |" for text, ok, figure in checks]
    print("\n".join(out))
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
