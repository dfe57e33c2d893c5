#!/usr/bin/env python3
"""Benchmark of continuous replication (issue 10): `penin run --replicate` against a local
SeaweedFS that this script starts itself (tests/s3/seaweedfs.sh --serve, stopped by its pid at
the end).

  bench/replication.py [--penin BIN] [--seconds S] [--rate OPS] [--rounds N] [--markdown FILE]
                       [--only-restore] [--compare BIN]

1. Replication lag under a steady RATE operations per second (add_score lines, paced) through
   `run --replicate` with the default interval: for each change, the time from its
   acknowledgement (its answer line read) to the first poll that finds its seq in the latest
   listed manifest (`penin backup status --json`, polled back to back; the time taken is the
   poll's end, so the figure is an upper bound by one poll). Median and p99.
2. `run`'s answer latency (send to answer) under the same load, replication on vs off.
3. Full restore of a 10,000 x 384 state in `arrow` (bench/pyref.py gen, then penin convert
   --to arrow, then backup push) against a plain GET of the same bytes (curl --aws-sigv4 of
   the snapshot object to a file): medians of N rounds and their ratio. --compare BIN restores
   with a second binary too (e.g. main's build), interleaved round by round with the others.

--only-restore runs part 3 alone.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def default_penin():
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
    return os.path.join(target, "release", "penin")


def pct(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, int(round(p / 100 * (len(values) - 1)))))
    return values[k]


class Server:
    """A private weed mini, started and stopped by pid."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="penin-bench-weed.")
        out = subprocess.run([os.path.join(ROOT, "tests/s3/seaweedfs.sh"), "--serve", self.dir],
                             capture_output=True, text=True, check=True)
        self.env = {}
        for line in out.stdout.splitlines():
            key, _, value = line.partition("=")
            if key == "WEED_PID":
                self.pid = int(value)
            elif key:
                self.env[key] = value

    def stop(self):
        try:
            os.kill(self.pid, 15)
            for _ in range(100):
                os.kill(self.pid, 0)
                time.sleep(0.1)
            os.kill(self.pid, 9)
        except OSError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


def steady_run(penin, env, state, seconds, rate, url=None, poll_status=True):
    """`penin run` fed `rate` add_score lines a second for `seconds`. Returns the send and
    answer times of each change (index i: seq i + 1, the state starting empty), the status
    poll observations [(time, remote seq)] when replicating, and stderr."""
    args = [penin, "--state", state, "run"]
    if url:
        args += ["--replicate", url]
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, bufsize=0)
    total = int(seconds * rate)
    sent = [0.0] * total
    acked = [0.0] * total
    stderr = []
    threading.Thread(target=lambda: stderr.append(proc.stderr.read()), daemon=True).start()

    def read():
        for i in range(total):
            line = proc.stdout.readline()
            if not line:
                break
            acked[i] = time.monotonic()

    reader = threading.Thread(target=read)
    reader.start()
    polls = []
    stop = threading.Event()

    def poll():
        missing = os.path.join(os.path.dirname(state), "no-such-state.json")
        while not stop.is_set():
            out = subprocess.run([penin, "--state", missing, "backup", "status", url, "--json"],
                                 capture_output=True, text=True, env=env)
            now = time.monotonic()
            if out.returncode == 0:
                seq = json.loads(out.stdout).get("remote_seq") or 0
                polls.append((now, seq))

    poller = threading.Thread(target=poll) if url and poll_status else None
    if poller:
        poller.start()
    start = time.monotonic()
    for i in range(total):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sent[i] = time.monotonic()
        proc.stdin.write(b'{"op":"add_score","score":0.5}\n')
    reader.join()
    if poller:
        # Until the last change is in a manifest (or 30 s).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (polls and polls[-1][1] >= total):
            time.sleep(0.05)
        stop.set()
        poller.join()
    proc.stdin.close()
    proc.wait(timeout=60)
    if proc.returncode != 0:
        sys.exit(f"penin run exited {proc.returncode}: {stderr}")
    return sent, acked, polls, (stderr[0] if stderr else b"").decode(errors="replace")


def lags(acked, polls):
    out = []
    j = 0
    for i, t in enumerate(acked):
        seq = i + 1
        while j < len(polls) and polls[j][1] < seq:
            j += 1
        if j == len(polls):
            break
        out.append(polls[j][0] - t)
    return out


def timed(args, env):
    start = time.monotonic()
    subprocess.run(args, check=True, env=env, capture_output=True)
    return time.monotonic() - start


def restore_bench(penin, env, work, rounds, compare=None):
    seed = os.path.join(work, "seed.json")
    subprocess.run([sys.executable, os.path.join(ROOT, "bench/pyref.py"), "gen", seed, "10000",
                    "384"], check=True, capture_output=True)
    state = os.path.join(work, "arrow", "state.arrow")
    os.makedirs(os.path.dirname(state))
    subprocess.run([penin, "convert", seed, state, "--to", "arrow"], check=True, env=env,
                   capture_output=True)
    url = f"{env['PENIN_TEST_S3']}/restore-{os.getpid()}"
    subprocess.run([penin, "--state", state, "backup", "push", url], check=True, env=env,
                   capture_output=True)
    listed = json.loads(subprocess.run([penin, "backup", "list", url, "--json"], check=True,
                                       env=env, capture_output=True, text=True).stdout)
    size = os.path.getsize(state)
    prefix = url[len("s3://"):]
    snapshot = None
    out = subprocess.run(["curl", "-sf", "--aws-sigv4", f"aws:amz:{env['AWS_REGION']}:s3",
                          "--user", f"{env['AWS_ACCESS_KEY_ID']}:{env['AWS_SECRET_ACCESS_KEY']}",
                          f"{env['AWS_ENDPOINT_URL']}/{prefix}/manifests/{1:020}.json"],
                         check=True, capture_output=True, text=True)
    snapshot = json.loads(out.stdout)["snapshot"]["key"]
    restores, gets, compared = [], [], []
    for r in range(rounds):
        target = os.path.join(work, f"restored-{r}", "state.arrow")
        restores.append(timed([penin, "--state", target, "backup", "restore", url], env))
        if compare:
            other = os.path.join(work, f"compared-{r}", "state.arrow")
            compared.append(timed([compare, "--state", other, "backup", "restore", url], env))
            shutil.rmtree(os.path.dirname(other))
        got = os.path.join(work, f"got-{r}")
        gets.append(timed(["curl", "-sf", "--aws-sigv4", f"aws:amz:{env['AWS_REGION']}:s3",
                           "--user", f"{env['AWS_ACCESS_KEY_ID']}:{env['AWS_SECRET_ACCESS_KEY']}",
                           "-o", got, f"{env['AWS_ENDPOINT_URL']}/{prefix}/{snapshot}"], env))
        if os.path.getsize(got) != size:
            sys.exit(f"the GET fetched {os.path.getsize(got)} bytes, not {size}")
        shutil.rmtree(os.path.dirname(target))
        os.remove(got)
    return size, listed[-1]["bytes"], restores, gets, compared


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--penin", default=default_penin())
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--markdown")
    parser.add_argument("--only-restore", action="store_true")
    parser.add_argument("--compare", help="a second penin binary whose restore is timed too")
    args = parser.parse_args()
    server = Server()
    work = tempfile.mkdtemp(prefix="penin-bench-replication.")
    try:
        env = dict(os.environ, **server.env)
        lines = []

        def say(line=""):
            print(line, flush=True)
            lines.append(line)

        stderr = ""
        ms = lambda s: f"{s * 1000:.2f} ms"
        if not args.only_restore:
            url = f"{server.env['PENIN_TEST_S3']}/lag-{os.getpid()}"
            off_sent, off_acked, _, _ = steady_run(args.penin, env, os.path.join(work, "off", "s.json"),
                                                   args.seconds, args.rate)
            # Latency with replication on, without the status poller (a process every few
            # milliseconds on the same cores); then the lag, polled.
            on_sent, on_acked, _, _ = steady_run(args.penin, env, os.path.join(work, "on", "s.json"),
                                                 args.seconds, args.rate, url + "-latency", False)
            _, lag_acked, polls, stderr = steady_run(args.penin, env,
                                                     os.path.join(work, "lag", "s.json"),
                                                     args.seconds, args.rate, url)
            lag = lags(lag_acked, polls)
            poll_gaps = [b[0] - a[0] for a, b in zip(polls, polls[1:])]
            off_lat = [a - s for s, a in zip(off_sent, off_acked)]
            on_lat = [a - s for s, a in zip(on_sent, on_acked)]
            total = int(args.seconds * args.rate)
            say(f"### Lag and answer latency: {total:,} add_score lines at {args.rate:,}/s, "
                f"--sync always, default interval (1 s)")
            say()
            say("| figure | median | p99 |")
            say("|---|---|---|")
            say(f"| replication lag (answer → seq in the latest manifest; {len(lag):,} changes) | "
                f"**{lag and ms(statistics.median(lag))}** | {lag and ms(pct(lag, 99))} |")
            say(f"| answer latency, replication off | {ms(statistics.median(off_lat))} | "
                f"{ms(pct(off_lat, 99))} |")
            say(f"| answer latency, replication on (no status poller) | {ms(statistics.median(on_lat))} | "
                f"{ms(pct(on_lat, 99))} |")
            say(f"| on / off (median) | **{statistics.median(on_lat) / statistics.median(off_lat):.2f}×** | "
                f"{pct(on_lat, 99) / pct(off_lat, 99):.2f}× |")
            say()
            say(f"Status polls: {len(polls)}, one every {ms(statistics.median(poll_gaps))} (median).")
        size, listed_bytes, restores, gets, compared = restore_bench(
            args.penin, env, work, args.rounds, args.compare)
        say()
        say(f"### Full restore: 10,000 × 384 in arrow ({size / 1e6:.1f} MB snapshot; manifest "
            f"{listed_bytes / 1e6:.1f} MB), {args.rounds} rounds")
        say()
        say("| contender | median | min |")
        say("|---|---|---|")
        say(f"| `penin backup restore` (download, check every XXH3-128, install) | "
            f"{ms(statistics.median(restores))} | {ms(min(restores))} |")
        say(f"| plain GET of the snapshot (curl --aws-sigv4, to a file) | "
            f"{ms(statistics.median(gets))} | {ms(min(gets))} |")
        if compared:
            say(f"| `{args.compare} backup restore` (compared, interleaved) | "
                f"{ms(statistics.median(compared))} | {ms(min(compared))} |")
        say(f"| restore / GET (medians) | **{statistics.median(restores) / statistics.median(gets):.2f}×** | |")
        if compared:
            say(f"| compared restore / GET (medians) | "
                f"{statistics.median(compared) / statistics.median(gets):.2f}× | |")
        if args.markdown:
            with open(args.markdown, "w") as f:
                f.write("\n".join(lines) + "\n")
        if "failing" in stderr:
            print("note: replication reported a failure during the lag run:\n" + stderr,
                  file=sys.stderr)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
