"""The journal (issue 8): what a change costs now that it is appended instead of saved.

  python3 bench/journal.py [--penin PATH] [--old-penin PATH] [--data DIR]
                           [--sizes 1000,10000,100000] [--rounds N] [--appends N]
                           [--latency-ops N] [--throughput-ops N] [--parts ...]
                           [--markdown FILE]

Every figure is wall clock seen from outside penin (`subprocess`, `time.perf_counter`),
on states written by Python (`bench/pyref.py gen OUT N 384`, kept in --data and shared with
compare.py), each contender on its own copy. The parts (--parts, default all):

  oneshot     `penin add-knowledge KEY --vector <384 floats>` on states of --sizes artifacts:
              the new penin's first append (it loads the state and hashes the snapshot, to
              start the journal) timed on its own, then --appends further whole-process
              appends (median); the old penin (--old-penin, the binary before the journal),
              which loads and rewrites the whole file, --rounds times (at most 3 at
              100,000 artifacts or more); runs of the two interleaved
  latency     one `penin run --sync P` process per policy (always, periodic, never) and round:
              one add_knowledge line of 384 floats written, its answer read, --latency-ops
              times; median and p99 of the time from write to answer, over every round
  throughput  --throughput-ops add_knowledge lines (unique keys, 384 floats) written to one
              `penin run --sync P` by a writer thread as fast as the pipe takes them while a
              reader thread counts the answers: ops/s = ops / (first write to last answer).
              On a base state whose snapshot is larger than the journal the run writes (so no
              compaction folds it), for each policy; and with `always` on the 1,000-artifact
              state, where compactions (journal past max(64 MiB, snapshot)) happen mid-run.
              Compactions are counted from `penin log --json` before the session ends
  replay      `penin stats` (snapshot + replay of the whole journal), median of 5, of two states
              whose journal holds --throughput-ops records: A, the state the first `never`
              throughput run leaves (the process is killed after its last answer, so that the
              end-of-session compaction does not fold the journal; its snapshot is larger than
              the journal, so no compaction folds it during the run); B, the 1,000-artifact state
              after --replay-oneshots one-shot `penin add-knowledge` processes (since one-shots
              compact once the journal outgrows the snapshot, B's journal holds at most about a
              snapshot's worth: --replay-oneshots 0 leaves B out). Also the base snapshot alone,
              `penin compact`, and `penin stats` after it
  compact     `penin compact` of the 10,000-artifact state with a few journal records against
              the old penin's whole-file save (`add-score 0.5`: load, rewrite, fsync), both
              whole processes, and each less the same binary's `stats` (its load) on the same
              files; --rounds rounds, interleaved

Prints the tables and the targets; --markdown also writes them to FILE.
"""
import argparse
import datetime
import json
import math
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PYREF = os.path.join(HERE, "pyref.py")
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no bench/__pycache__ left behind
import compare  # noqa: E402  (the workload files' stamps, shared with compare.py)

DIM = 384
PARTS = ["oneshot", "latency", "throughput", "replay", "compact"]
POLICIES = ["always", "periodic", "never"]
COMPACT_AT_LEAST = 64 << 20  # penin_orchestrator::memory::COMPACT_AT_LEAST
FRAME = 29 + 4 + 4  # a journal record's frame, key length and vector length (journal.rs)
REST = len(b'{"metadata":{}}')  # an add_knowledge payload's JSON rest, without metadata
BYTES_PER_ARTIFACT = 11_000  # a 384-float artifact in pyref's indent=2 file (at least)
LARGE = 100_000  # from this many artifacts on, the old penin runs at most 3 times
TARGET_ONESHOT_RATIO = 10  # new ≤ old / 10 at 10,000 artifacts
TARGET_ONESHOT_FLAT = 1.5  # new at the largest size within 1.5 × of the smallest
TARGET_LATENCY_MS = 1.0  # run --sync always, median
TARGET_OPS = 20_000  # run --sync always, group commit
TARGET_REPLAY_S = 1.0  # stats of a state whose journal holds 100,000 records


# ---------------------------------------------------------------------------------------
# Files and processes


def ensure_state(data, n):
    """The Python-written state of n artifacts × 384 (generated once, stamped as compare.py
    stamps its files, so that either script reuses the other's)."""
    path = os.path.join(data, f"state_{n}x{DIM}.json")
    stamp = f"{compare.generator_stamp()} gen {n} {DIM}\n"
    if os.path.exists(path) and os.path.exists(path + ".stamp"):
        with open(path + ".stamp") as f:
            if f.read() == stamp:
                return path
    print(f"writing {path} (pyref.py gen {n} {DIM}) ...", flush=True)
    compare.drop(path + ".stamp")
    start = time.perf_counter()
    subprocess.run([sys.executable, PYREF, "gen", path, str(n), str(DIM)], check=True)
    with open(path + ".stamp", "w") as f:
        f.write(stamp)
    print(f"  written in {time.perf_counter() - start:.0f} s", flush=True)
    return path


def fresh_copy(src, work, name):
    """A directory of its own under work holding a copy of src as state.json (a new inode:
    for penin, a snapshot it has not seen), synced so that its writeback does not land in a
    timing."""
    d = os.path.join(work, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    dst = os.path.join(d, "state.json")
    shutil.copyfile(src, dst)
    os.sync()
    return dst


def timed(argv, check_out=None):
    """Runs a whole process; its wall-clock seconds, once it exited 0 (and printed check_out)."""
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"error: `{show(argv)}` failed (exit {proc.returncode}):\n{proc.stderr.strip()}")
    if check_out is not None and check_out not in proc.stdout:
        sys.exit(f"error: `{show(argv)}` did not say {check_out!r}:\n{proc.stdout.strip()}")
    return seconds


def output(argv):
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"error: `{show(argv)}` failed (exit {proc.returncode}):\n{proc.stderr.strip()}")
    return proc.stdout


def show(argv):
    return " ".join(a if len(a) < 60 else a[:20] + "…" for a in argv)


def knowledge(penin, state):
    return json.loads(output([penin, "--state", state, "stats", "--json"]))["knowledge_base_size"]


def ledger_events(penin, state):
    out = output([penin, "--state", state, "log", "--json"])
    return [json.loads(line)["event"] for line in out.splitlines() if line.strip()]


def journal_records(penin, state):
    """The changes the journal holds since the snapshot, as `penin verify` counts them."""
    for line in output([penin, "verify", state]).splitlines():
        if ".journal: ok:" in line:
            return int(line.split(": ok: ", 1)[1].split()[0])
    return 0


def vector(rnd):
    return [rnd.uniform(-1, 1) for _ in range(DIM)]


def vector_text(v):
    """As the Python tool writes floats (repr)."""
    return "[" + ", ".join(repr(x) for x in v) + "]"


def median(xs):
    return statistics.median(xs)


def percentile(xs, p):
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))]


class Session:
    """A `penin run` process, ready once its start-up lines are out (the state loaded)."""

    def __init__(self, penin, state, policy):
        self.argv = [penin, "--state", state, "run", "--sync", policy]
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.stderr = []
        for line in self.proc.stderr:
            self.stderr.append(line.decode(errors="replace"))
            if "Sync policy" in self.stderr[-1]:
                break
        else:
            sys.exit(f"error: `{show(self.argv)}` did not start:\n{''.join(self.stderr)}")
        self.drain = threading.Thread(target=lambda: self.stderr.extend(
            l.decode(errors="replace") for l in self.proc.stderr), daemon=True)
        self.drain.start()
        self.stdin = self.proc.stdin.fileno()  # written with os.write: no buffer in between
        self.stdout = self.proc.stdout

    def ask(self, line):
        os.write(self.stdin, line)
        answer = self.stdout.readline()
        if not answer.startswith(b'{"ok":true'):
            self.fail(f"answered {answer!r}")
        return answer

    def fail(self, why):
        self.kill()
        sys.exit(f"error: `{show(self.argv)}` {why}:\n{''.join(self.stderr)}")

    def close(self):
        """Ends the session as a user does (end of input: compaction, exit 0)."""
        self.proc.stdin.close()
        if self.proc.wait() != 0:
            self.drain.join(5)
            sys.exit(f"error: `{show(self.argv)}` exited {self.proc.returncode}:\n{''.join(self.stderr)}")

    def kill(self):
        """SIGKILL (this process only): the journal stays as it is, not compacted."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def cpu_seconds(pid):
    """CPU seconds (user + system) of a process's threads so far: (main thread, all)."""
    tick = os.sysconf("SC_CLK_TCK")
    main = total = 0.0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        total += used
        if int(tid) == pid:
            main = used
    return main, total


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def add_line(key, vtext):
    return b'{"op":"add_knowledge","key":"' + key.encode() + b'","vector":' + vtext + b"}\n"


# ---------------------------------------------------------------------------------------
# 1. One-shot add-knowledge


def oneshot(args, states, work, notes):
    """Every size's copies are prepared and started first; then each round appends once to
    every size in turn (and runs the old binary in its first rounds), so that the machine's
    noise falls on every size alike."""
    rnd = random.Random(1)
    vec = ",".join(repr(x) for x in vector(rnd))

    def add(penin, state, key):
        said = "on disk" if penin == args.penin else "state saved"
        return timed([penin, "--state", state, "add-knowledge", key, "--vector", vec], said)

    runs = {}
    for n, src in states.items():
        new_state = fresh_copy(src, work, f"oneshot-new-{n}")
        old_state = fresh_copy(src, work, f"oneshot-old-{n}") if args.old_penin else None
        first = add(args.penin, new_state, "warmup")
        print(f"one-shot N = {n:,}: first append {first:.3f} s", flush=True)
        runs[n] = {"new_state": new_state, "old_state": old_state, "first": first, "new": [], "old": [],
                   "old_runs": (min(args.rounds, 3) if n >= LARGE else args.rounds) if old_state else 0,
                   "stat": os.stat(new_state)}
    os.sync()
    for i in range(max([args.appends] + [r["old_runs"] for r in runs.values()])):
        for n, r in runs.items():
            if i < r["old_runs"]:
                r["old"].append(add(args.old_penin, r["old_state"], f"old{i}"))
                os.sync()  # its writeback settled before the next timing
            if i < args.appends:
                r["new"].append(add(args.penin, r["new_state"], f"new{i}"))
    rows = {}
    for n, r in runs.items():
        before, after = r["stat"], os.stat(r["new_state"])
        # The appends read and rewrote no snapshot, and every one is in the state.
        if (before.st_ino, before.st_mtime_ns, before.st_size) != (after.st_ino, after.st_mtime_ns, after.st_size):
            notes.append(f"one-shot at N = {n:,}: the snapshot changed during the appends")
        if "compact" in ledger_events(args.penin, r["new_state"]):
            notes.append(f"one-shot at N = {n:,}: the ledger names a compaction")
        if knowledge(args.penin, r["new_state"]) != n + 1 + args.appends:
            sys.exit(f"error: the new penin's state at N = {n:,} does not hold every appended artifact")
        if r["old_state"] and knowledge(args.old_penin, r["old_state"]) != n + r["old_runs"]:
            sys.exit(f"error: the old penin's state at N = {n:,} does not hold every artifact")
        new, old = r["new"], r["old"]
        rows[n] = {"first": r["first"], "new": median(new), "new_min": min(new), "new_max": max(new),
                   "new_runs": len(new), "old": median(old) if old else None, "old_runs": len(old),
                   "size": os.path.getsize(states[n]) / 1e6}
        print(f"one-shot N = {n:,}: median {rows[n]['new'] * 1e3:.2f} ms"
              + (f"; old {rows[n]['old']:.3f} s" if old else ""), flush=True)
        shutil.rmtree(os.path.dirname(r["new_state"]))
        if r["old_state"]:
            shutil.rmtree(os.path.dirname(r["old_state"]))
    return rows


# ---------------------------------------------------------------------------------------
# 2. Latency of run


def latency(args, base, work):
    rnd = random.Random(2)
    vtexts = [vector_text(vector(rnd)).encode() for _ in range(16)]
    samples = {p: [] for p in POLICIES}
    for r in range(args.rounds):
        for policy in POLICIES:
            state = fresh_copy(base, work, f"latency-{policy}")
            s = Session(args.penin, state, policy)
            s.ask(add_line("warmup", vtexts[0]))  # starts the journal: hashes the snapshot once
            for i in range(args.latency_ops):
                line = add_line(f"lat{i}", vtexts[i % len(vtexts)])
                start = time.perf_counter()
                s.ask(line)
                samples[policy].append(time.perf_counter() - start)
            s.close()
            shutil.rmtree(os.path.dirname(state))
        print(f"latency: round {r + 1}/{args.rounds} done", flush=True)
    return {p: {"median": median(v), "p99": percentile(v, 99), "ops": len(v)} for p, v in samples.items()}


# ---------------------------------------------------------------------------------------
# 3. Throughput with group commit (and 4's state)


def throughput_once(args, base, work, name, policy, keep=False):
    """One session: ops/s and the compactions the ledger names during it. With keep, the
    process is killed after its last answer and the state's path is returned."""
    ops = args.throughput_ops
    rnd = random.Random(3)
    vtexts = [vector_text(vector(rnd)).encode() for _ in range(64)]
    state = fresh_copy(base, work, name)
    s = Session(args.penin, state, policy)
    s.ask(add_line("warmup", vtexts[0]))  # starts the journal: hashes the snapshot once
    before = ledger_events(args.penin, state).count("compact")
    got = {"n": 0, "bad": None, "end": None}

    def read():
        for answer in s.stdout:
            if not answer.startswith(b'{"ok":true') and got["bad"] is None:
                got["bad"] = answer
            got["n"] += 1
            if got["n"] == ops:
                got["end"] = time.perf_counter()
                return

    def write():
        batch = 64
        for i in range(0, ops, batch):
            s.proc.stdin.write(b"".join(add_line(f"tp{j:07d}", vtexts[j % 64]) for j in range(i, min(ops, i + batch))))
        s.proc.stdin.flush()

    reader = threading.Thread(target=read)
    writer = threading.Thread(target=write)
    reader.start()
    cpu_before = cpu_seconds(s.proc.pid)
    start = time.perf_counter()
    writer.start()
    writer.join()
    reader.join()
    if got["bad"] is not None or got["end"] is None:
        s.fail(f"answered {got['bad']!r} ({got['n']:,} answers)")
    seconds = got["end"] - start
    cpu_after = cpu_seconds(s.proc.pid)
    run = {"rate": ops / seconds, "main_us": (cpu_after[0] - cpu_before[0]) / ops * 1e6,
           "all_us": (cpu_after[1] - cpu_before[1]) / ops * 1e6, "rss": peak_rss_mb(s.proc.pid)}
    run["compactions"] = ledger_events(args.penin, state).count("compact") - before
    s.kill()  # the end-of-session compaction is not timed: skip it (and, with keep, keep the journal)
    if keep:
        return run, state
    shutil.rmtree(os.path.dirname(state))
    return run, None


def journal_bytes(records):
    return 96 + records * (FRAME + len("tp0000000") + 8 * DIM + REST)


def replay_base_size(records):
    """Artifacts of a base state whose snapshot is larger than the journal of records
    add_knowledge changes by at least 10 % (then no compaction folds them), in thousands."""
    need = max(COMPACT_AT_LEAST, journal_bytes(records)) * 1.1
    return math.ceil(need / BYTES_PER_ARTIFACT / 1000) * 1000


def throughput(args, big, small, work):
    variants = [(f"{p}", big, p) for p in POLICIES] + [("always, small snapshot", small, "always")]
    results = {v[0]: [] for v in variants}
    kept = None
    for r in range(args.rounds):
        for label, base, policy in variants:
            keep = kept is None and policy == "never" and base == big and "replay" in args.parts
            run, state = throughput_once(args, base, work, f"tp-{policy}-{r}", policy, keep)
            if state:
                kept = state
            results[label].append(run)
            print(f"throughput {label}: {run['rate']:,.0f} ops/s, {run['compactions']} compaction(s), "
                  f"penin CPU {run['main_us']:.0f} µs/op on its main thread, {run['all_us']:.0f} in all, "
                  f"peak RSS {run['rss']:.0f} MB", flush=True)
    rows = {}
    for label, base, policy in variants:
        runs = results[label]
        rates = [x["rate"] for x in runs]
        rows[label] = {"policy": policy, "base": base, "median": median(rates), "min": min(rates),
                       "max": max(rates), "compactions": sorted({x["compactions"] for x in runs}),
                       "runs": len(rates), "main_us": median(x["main_us"] for x in runs),
                       "all_us": median(x["all_us"] for x in runs), "rss": max(x["rss"] for x in runs)}
    return rows, kept


# ---------------------------------------------------------------------------------------
# 4. Replay


def oneshot_journal(args, src, work, records):
    """A copy of src whose journal holds records add_knowledge changes appended by as many
    one-shot `penin add-knowledge` processes (which compact once the journal outgrows the
    snapshot), one after the other from a shell loop; and how many appends a second that came
    to."""
    state = fresh_copy(src, work, "replay-oneshot")
    vec = ",".join(repr(x) for x in vector(random.Random(4)))
    loop = 'i=0; while [ $i -lt "$3" ]; do i=$((i+1)); "$0" --state "$1" add-knowledge "r$i" --vector "$2" ' \
           '>/dev/null || exit 1; done'
    print(f"replay: appending {records:,} records with one-shot add-knowledge ...", flush=True)
    seconds = timed(["sh", "-c", loop, args.penin, state, vec, str(records)])
    print(f"  {records / seconds:,.0f} appends/s", flush=True)
    return state, records / seconds


def replay(args, state, base):
    """`penin stats` of a state with a journal (median of 5), of its base snapshot alone,
    then `penin compact` and `penin stats` after it."""
    records = journal_records(args.penin, state)
    events = ledger_events(args.penin, state)
    stats_cmd = [args.penin, "--state", state, "stats", "--json"]
    with_journal = [timed(stats_cmd) for _ in range(5)]
    base_alone = [timed([args.penin, "--state", base, "stats", "--json"]) for _ in range(5)]
    size_before = os.path.getsize(state) / 1e6
    jsize = os.path.getsize(state + ".journal") / 1e6
    compact = timed([args.penin, "--state", state, "compact"], "Compacted")
    after = [timed(stats_cmd) for _ in range(5)]
    result = {"records": records, "compactions": events.count("compact"), "stats": median(with_journal),
              "base": median(base_alone), "compact": compact, "after": median(after), "snapshot_mb": size_before,
              "journal_mb": jsize, "after_mb": os.path.getsize(state) / 1e6,
              "artifacts": knowledge(args.penin, state)}
    print(f"replay: stats {result['stats']:.3f} s with {records:,} records, {result['base']:.3f} s without",
          flush=True)
    shutil.rmtree(os.path.dirname(state))
    return result


# ---------------------------------------------------------------------------------------
# 5. Compaction against a whole-file save


def compaction(args, src, work, records=10):
    rnd = random.Random(5)
    vec = ",".join(repr(x) for x in vector(rnd))
    s = {k: [] for k in ["new_stats", "compact", "old_stats", "old_save"]}
    for r in range(args.rounds):
        new = fresh_copy(src, work, "compact-new")
        for i in range(records):
            timed([args.penin, "--state", new, "add-knowledge", f"c{i}", "--vector", vec], "on disk")
        os.sync()
        s["new_stats"].append(timed([args.penin, "--state", new, "stats", "--json"]))
        s["compact"].append(timed([args.penin, "--state", new, "compact"], "Compacted"))
        if args.old_penin:
            old = fresh_copy(src, work, "compact-old")
            s["old_stats"].append(timed([args.old_penin, "--state", old, "stats"]))
            s["old_save"].append(timed([args.old_penin, "--state", old, "add-score", "0.5"]))
        print(f"compaction: round {r + 1}/{args.rounds} done", flush=True)
    shutil.rmtree(os.path.join(work, "compact-new"))
    shutil.rmtree(os.path.join(work, "compact-old"), ignore_errors=True)
    return {k: median(v) if v else None for k, v in s.items()} | {"records": records, "mb": os.path.getsize(src) / 1e6}


# ---------------------------------------------------------------------------------------
# Report


def ms(x):
    return f"{x * 1e3:.2f} ms"


COMMANDS = """The commands timed (S a copy of the Python-written state, in a directory of its own; every
one must exit 0 and say what it did):

```sh
penin --state S add-knowledge KEY --vector 0.12,-0.5,...   # 384 floats; new and old binary
penin --state S run --sync always|periodic|never           # lines {"op":"add_knowledge","key":K,"vector":[384 floats]}
penin --state S stats --json                               # part 4, and the loads of part 5
penin --state S compact                                    # parts 4 and 5
penin-old --state S add-score 0.5                          # part 5: load, whole-file durable save
penin-old --state S stats                                  # part 5: the old load
penin --state S log --json; penin verify S                 # compactions counted, records counted
```
"""


def report(args, res):
    lines, targets = [COMMANDS], []

    def verdict(ok):
        return "met" if ok else "**not met**"

    if "oneshot" in res:
        rows = res["oneshot"]
        lines += ["### 1. One-shot `penin add-knowledge KEY --vector <384 floats>`", "",
                  "| state | file MB | new: first append | new: later appends (median) | new: min – max "
                  "| old: load + rewrite (median) | old ÷ new |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for n, r in rows.items():
            old = f"{r['old']:.3f} s ({r['old_runs']} runs)" if r["old"] else ""
            ratio = f"{r['old'] / r['new']:.0f} ×" if r["old"] else ""
            lines.append(f"| {n:,} × {DIM} | {r['size']:.1f} | {r['first']:.3f} s | {ms(r['new'])} ({r['new_runs']} runs) "
                         f"| {ms(r['new_min'])} – {ms(r['new_max'])} | {old} | {ratio} |")
        lines.append("")
        at = [n for n in rows if n == 10_000]
        if at and rows[at[0]]["old"]:
            r = rows[at[0]]
            targets.append(("one-shot add-knowledge at 10,000 × 384: new ≤ 1/10 of old",
                            f"{ms(r['new'])} vs {r['old']:.3f} s = **1/{r['old'] / r['new']:.0f}**",
                            verdict(r["new"] * TARGET_ONESHOT_RATIO <= r["old"])))
        if len(rows) > 1:
            lo, hi = min(rows), max(rows)
            ratio = rows[hi]["new"] / rows[lo]["new"]
            targets.append((f"one-shot add-knowledge at {hi:,} within {TARGET_ONESHOT_FLAT} × of at {lo:,} (new)",
                            f"{ms(rows[hi]['new'])} ÷ {ms(rows[lo]['new'])} = **{ratio:.2f} ×**",
                            verdict(ratio <= TARGET_ONESHOT_FLAT)))
    if "latency" in res:
        lines += ["### 2. `penin run`: one add_knowledge line, then its answer", "",
                  "| --sync | median | p99 | operations |", "|---|---:|---:|---:|"]
        for p, r in res["latency"].items():
            lines.append(f"| {p} | {ms(r['median'])} | {ms(r['p99'])} | {r['ops']:,} |")
        lines.append("")
        r = res["latency"]["always"]
        targets.append(("run --sync always: median latency ≤ 1 ms", f"**{ms(r['median'])}** (p99 {ms(r['p99'])})",
                        verdict(r["median"] * 1e3 <= TARGET_LATENCY_MS)))
    if "throughput" in res:
        rows, small_n, big_n = res["throughput"]
        lines += [f"### 3. `penin run`: {args.throughput_ops:,} add_knowledge lines as fast as they go", "",
                  "| --sync | base state | ops/s (median) | min – max | compactions during a run "
                  "| penin CPU µs/op: main thread / all | ceiling of the main thread, ops/s | peak RSS MB | runs |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
        for label, r in rows.items():
            n = big_n if r["base"] == res["paths"]["big"] else small_n
            comp = ", ".join(map(str, r["compactions"]))
            lines.append(f"| {r['policy']} | {n:,} × {DIM} | {r['median']:,.0f} | {r['min']:,.0f} – {r['max']:,.0f} "
                         f"| {comp} | {r['main_us']:.0f} / {r['all_us']:.0f} | {1e6 / r['main_us']:,.0f} "
                         f"| {r['rss']:.0f} | {r['runs']} |")
        lines += ["", "CPU time is penin's own (user + system, from /proc, over the timed window); the "
                  "ceiling is what its main thread (which parses, journals and applies every line) "
                  "would allow on a core of its own.", ""]
        r = rows["always"]
        targets.append((f"run --sync always: ≥ {TARGET_OPS:,} ops/s with group commit",
                        f"**{r['median']:,.0f} ops/s** (no compaction; {rows['always, small snapshot']['median']:,.0f} "
                        f"with compactions)", verdict(r["median"] >= TARGET_OPS)))
    if "replay" in res:
        reps = res["replay"]
        lines += ["### 4. Replay: `penin stats` loads the snapshot, then replays the journal", ""]
        for key, r in reps.items():
            if key == "run":
                lines.append(f"- **A**: the state the first `never` run of part 3 left (killed after its last answer, "
                             f"so that the end-of-session compaction did not fold the journal): a {r['snapshot_mb']:.0f} MB "
                             f"snapshot of {res['replay_base']:,} artifacts, chosen larger than the journal so that no "
                             f"compaction happens in the run, and a {r['journal_mb']:.0f} MB journal of {r['records']:,} "
                             f"records ({r['compactions']} compaction in its ledger).")
            else:
                lines.append(f"- **B**: the {r['snapshot_mb']:.0f} MB state of 1,000 artifacts and a "
                             f"{r['journal_mb']:.0f} MB journal of {r['records']:,} records appended by as many one-shot "
                             f"`penin add-knowledge` processes in a shell loop ({res['oneshot_rate']:,.0f} appends/s; "
                             f"one-shots never compact: {r['compactions']} compaction in its ledger).")
        names = {"run": "A", "oneshots": "B"}
        lines += ["", "| what | " + " | ".join(names[k] for k in reps) + " |", "|---|" + "---:|" * len(reps)]
        rows = [("`penin stats`, snapshot + journal (median of 5), s", lambda r: f"{r['stats']:.3f}"),
                ("`penin stats` of the base snapshot alone (median of 5), s", lambda r: f"{r['base']:.3f}"),
                ("the replay's share (difference), s", lambda r: f"{r['stats'] - r['base']:.3f}"),
                ("`penin compact`, s", lambda r: f"{r['compact']:.3f}"),
                ("snapshot it wrote, MB", lambda r: f"{r['after_mb']:.0f}"),
                ("`penin stats` after it (median of 5), s", lambda r: f"{r['after']:.3f}")]
        for what, f in rows:
            lines.append(f"| {what} | " + " | ".join(f(r) for r in reps.values()) + " |")
        lines.append("")
        for key, r in reps.items():
            targets.append((f"replay: `penin stats` of a state whose journal holds {r['records']:,} records ≤ 1 s "
                            f"({names[key]}: {r['snapshot_mb']:.0f} MB snapshot)",
                            f"**{r['stats']:.3f} s**, of which {r['base']:.3f} s the snapshot alone",
                            verdict(r["stats"] <= TARGET_REPLAY_S)))
    if "compact" in res:
        r = res["compact"]
        lines += [f"### 5. Compaction against a whole-file save ({r['mb']:.0f} MB state, 10,000 × {DIM})", "",
                  "| what (whole process, median) | seconds |", "|---|---:|",
                  f"| new `penin compact` (snapshot + {r['records']} journal records) | {r['compact']:.3f} |",
                  f"| new `penin stats` on the same files (its load) | {r['new_stats']:.3f} |",
                  f"| new: compaction less load | {r['compact'] - r['new_stats']:.3f} |"]
        if r["old_save"]:
            lines += [f"| old `penin add-score 0.5` (load, whole-file durable save) | {r['old_save']:.3f} |",
                      f"| old `penin stats` (its load) | {r['old_stats']:.3f} |",
                      f"| old: save less load | {r['old_save'] - r['old_stats']:.3f} |"]
            new_net, old_net = r["compact"] - r["new_stats"], r["old_save"] - r["old_stats"]
            targets.append(("compaction costs no more than a full save today (10,000 × 384)",
                            f"whole process {r['compact']:.3f} s vs {r['old_save']:.3f} s (**{r['compact'] / r['old_save']:.2f} ×**); "
                            f"less the load {new_net:.3f} s vs {old_net:.3f} s (**{new_net / old_net:.2f} ×**)",
                            verdict(r["compact"] <= r["old_save"] * 1.05 or new_net <= old_net * 1.05)))
        lines.append("")
    if res.get("notes"):
        lines += ["Notes:", ""] + [f"- {n}" for n in res["notes"]] + [""]
    if targets:
        lines += ["### Targets", "", "| target | figure | |", "|---|---|---|"]
        lines += [f"| {t} | {f} | {v} |" for t, f, v in targets]
        lines.append("")
    return "\n".join(lines)


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{platform.system()} {platform.release()}, nproc {os.cpu_count()}, {cpu}, Python {platform.python_version()}"


def default_penin():
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    return os.path.join(target, "release", "penin")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--penin", default=default_penin(), help="the penin binary with the journal "
                        "(default: $CARGO_TARGET_DIR or target, release/penin)")
    parser.add_argument("--old-penin", help="penin before the journal (commit 5af7347), for the baselines")
    parser.add_argument("--data", default=os.path.join(ROOT, "target", "bench-data"))
    parser.add_argument("--sizes", default="1000,10000,100000", help="artifacts of the one-shot states")
    parser.add_argument("--rounds", type=int, default=3, help="old-penin one-shots (≤ 3 at 100,000), latency "
                        "sessions, throughput runs and compaction rounds per contender")
    parser.add_argument("--appends", type=int, default=20, help="timed one-shot appends of the new penin per size")
    parser.add_argument("--latency-ops", type=int, default=1000)
    parser.add_argument("--throughput-ops", type=int, default=100_000)
    parser.add_argument("--replay-oneshots", type=int, help="records of replay state B, appended by one-shot "
                        "add-knowledge processes (default: --throughput-ops; 0: no state B)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"of {','.join(PARTS)}")
    parser.add_argument("--markdown")
    args = parser.parse_args()
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if not args.parts or any(p not in PARTS for p in args.parts):
        parser.error(f"--parts: choose from {','.join(PARTS)}")
    if args.replay_oneshots is None:
        args.replay_oneshots = args.throughput_ops
    if args.rounds < 1 or args.appends < 1:
        parser.error("--rounds and --appends must be at least 1")
    for name in ["penin", "old_penin"]:
        path = getattr(args, name)
        if path is not None:
            path = os.path.abspath(path)
            setattr(args, name, path)
            if not os.access(path, os.X_OK):
                parser.error(f"--{name.replace('_', '-')}: {path} is not an executable (build it first)")
    sizes = sorted(int(s) for s in args.sizes.split(","))
    os.makedirs(args.data, exist_ok=True)
    work = os.path.join(args.data, "journal-work")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    busy = os.getloadavg()[0]
    started = datetime.datetime.now(datetime.timezone.utc)
    small_n = 1000
    big_n = replay_base_size(args.throughput_ops + 1)
    needed = set(sizes if "oneshot" in args.parts else [])
    needed |= {small_n} if {"latency", "throughput", "replay"} & set(args.parts) else set()
    needed |= {big_n} if "throughput" in args.parts else set()
    needed |= {10_000} if "compact" in args.parts else set()
    paths = {n: ensure_state(args.data, n) for n in sorted(needed)}
    res = {"notes": [], "paths": {"big": paths.get(big_n)}, "replay_base": big_n}
    t0 = time.perf_counter()
    if "oneshot" in args.parts:
        res["oneshot"] = oneshot(args, {n: paths[n] for n in sizes}, work, res["notes"])
    if "latency" in args.parts:
        res["latency"] = latency(args, paths[small_n], work)
    if "throughput" in args.parts:
        rows, kept = throughput(args, paths[big_n], paths[small_n], work)
        res["throughput"] = (rows, small_n, big_n)
        if "replay" in args.parts:
            res["replay"] = {"run": replay(args, kept, paths[big_n])}
    if "replay" in args.parts and args.replay_oneshots:
        state, res["oneshot_rate"] = oneshot_journal(args, paths[small_n], work, args.replay_oneshots)
        res.setdefault("replay", {})["oneshots"] = replay(args, state, paths[small_n])
    if "compact" in args.parts:
        res["compact"] = compaction(args, paths[10_000], work)
    shutil.rmtree(work, ignore_errors=True)
    header = (f"Run of {started.strftime('%Y-%m-%d %H:%M')} UTC on {machine()}; load average {busy:.1f} at the "
              f"start; {time.perf_counter() - t0:.0f} s of measuring.\n\n"
              f"`{os.path.relpath(sys.argv[0], ROOT) if sys.argv[0].startswith(ROOT) else sys.argv[0]} "
              f"{' '.join(sys.argv[1:])}`\n")
    text = report(args, res)
    print()
    print(header)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(header + "\n" + text)


if __name__ == "__main__":
    main()
