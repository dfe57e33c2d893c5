"""Whole-process cost of encryption: `penin convert IN OUT --to FORMAT`, with and without
`--identity`, for json and json.zst, runs interleaved, medians and ratios.

    python3 bench/encryption.py PENIN IN.json [ROUNDS]

IN.json: a state, e.g. `python3 bench/pyref.py gen in.json 10000 384`. PENIN: a release
build of the penin binary. Writes its files beside IN.json.
"""

import os
import statistics
import subprocess
import sys
import time


def main():
    penin, source = sys.argv[1], os.path.abspath(sys.argv[2])
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 7
    work = os.path.dirname(source)
    key = os.path.join(work, "bench-key.txt")
    if not os.path.exists(key):
        subprocess.run([penin, "keygen", key], check=True, capture_output=True)
    contenders = [
        (fmt, enc) for fmt in ("json", "json.zst") for enc in (False, True)
    ]
    times = {c: [] for c in contenders}
    for _ in range(rounds):
        for fmt, enc in contenders:
            out = os.path.join(work, f"bench-out.{fmt}{'.age' if enc else ''}")
            if os.path.exists(out):
                os.remove(out)
            args = [penin, "--state", os.path.join(work, "bench-unused.json")]
            if enc:
                args += ["--identity", key]
            args += ["convert", source, out, "--to", fmt]
            start = time.perf_counter()
            subprocess.run(args, check=True, capture_output=True)
            times[(fmt, enc)].append(time.perf_counter() - start)
    size = os.path.getsize(source)
    print(f"input {size / 1e6:.1f} MB, {rounds} interleaved rounds, median seconds")
    for fmt in ("json", "json.zst"):
        plain = statistics.median(times[(fmt, False)])
        sealed = statistics.median(times[(fmt, True)])
        print(
            f"{fmt:9} plain {plain:.3f} s   encrypted {sealed:.3f} s   "
            f"{(sealed / plain - 1) * 100:+.1f}%"
        )


main()
