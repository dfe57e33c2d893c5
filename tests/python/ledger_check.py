#!/usr/bin/env python3
"""Checks a penin audit ledger with nothing but the standard library.

    python3 ledger_check.py NAME.ledger

Recomputes every line's BLAKE2b-256 over its bytes up to ',"hash":"', and checks that
each line's prev is the previous line's hash (64 zeros first) and its seq its line number.
Prints "ok N lines" and exits 0, or names the first bad seq and why and exits 1
(2 if the file cannot be read).
Bytes after the last newline are a torn append, not part of the chain: they are reported.
"""
import hashlib
import json
import sys


def fault(line, seq, prev):
    """Why line `seq` is bad, or None."""
    entry = json.loads(line)
    if line[-75:-66] != b',"hash":"' or line[-2:] != b'"}' or entry.get("hash") != line[-66:-2].decode():
        return "it does not end with its hash"
    if hashlib.blake2b(line[:-75], digest_size=32).hexdigest() != entry["hash"]:
        return "its hash does not match its bytes"
    if type(entry.get("seq")) is not int or entry["seq"] != seq:
        return f"its seq is {entry.get('seq')!r}, not {seq}"
    if entry.get("prev") != prev:
        return "its prev is not the previous line's hash"
    return None


def main(path):
    try:
        with open(path, "rb") as file:
            *lines, torn = file.read().split(b"\n")
    except OSError as error:
        print(f"cannot read {path}: {error}")
        return 2
    prev, offset = "0" * 64, 0
    for seq, line in enumerate(lines, 1):
        try:
            why = fault(line, seq, prev)
        except (ValueError, AttributeError) as error:  # not JSON, not UTF-8, not an object
            why = f"it is not a ledger line ({error})"
        if why:
            print(f"bad seq {seq} at byte {offset}: {why}")
            return 1
        prev, offset = line[-66:-2].decode(), offset + len(line) + 1
    tail = f", then a torn tail of {len(torn)} bytes at byte {offset}" if torn else ""
    print(f"ok {len(lines)} lines{tail}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
