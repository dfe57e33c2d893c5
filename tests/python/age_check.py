"""pyrage against penin's encrypted files (age, X25519).

    age_check.py decrypt IDENTITY_FILE ENCRYPTED OUT   write the decrypted content to OUT
    age_check.py encrypt IDENTITY_FILE PLAIN OUT       encrypt PLAIN to the identity's recipient

Exit code 3 when the pyrage package is missing (the test then skips, which fails under CI).
"""

import sys

try:
    import pyrage
except ImportError:
    print("the Python package pyrage is missing", file=sys.stderr)
    sys.exit(3)


def identity(path):
    for line in open(path, encoding="ascii").read().splitlines():
        if line.startswith("AGE-SECRET-KEY-1"):
            return pyrage.x25519.Identity.from_str(line)
    raise SystemExit(f"{path}: no identity")


def main():
    command, key, source, out = sys.argv[1:5]
    data = open(source, "rb").read()
    if command == "decrypt":
        result = pyrage.decrypt(data, [identity(key)])
    elif command == "encrypt":
        result = pyrage.encrypt(data, [identity(key).to_public()])
    else:
        raise SystemExit(f"unknown command {command}")
    open(out, "wb").write(result)


main()
