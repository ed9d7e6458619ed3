#!/usr/bin/env bash
# Runs the Python client against a freshly started mora server on loopback:
# a virtual environment with the pinned packages, the debug binary, a
# temporary data directory. Used by .ci/run; needs python3 with venv. The
# binary is the one `cargo test` builds (same features), so after the tests
# nothing is compiled again.
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=target/python-client-venv
if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r examples/python/requirements.txt

cargo test --locked --quiet --no-run 2> /dev/null
data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
./target/debug/mora serve --listen "127.0.0.1:$port" --metrics-listen 127.0.0.1:0 \
    --data-dir "$data" > "$data.log" 2>&1 &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data" "$data.log"' EXIT

if ! "$venv/bin/python" examples/python/client.py "127.0.0.1:$port"; then
    echo "--- server log ---"; cat "$data.log"
    exit 1
fi
