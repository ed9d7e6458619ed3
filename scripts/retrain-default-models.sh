#!/usr/bin/env bash
# Retrains the models shipped in models/ from a simulated portfolio: simulate
# the events into a file, then train each kind on that file through the normal
# path. Deterministic: the same seed gives the same model parameters.
set -euo pipefail
cd "$(dirname "$0")/.."

seed=${SEED:-42}
debtors=${DEBTORS:-20000}
events="target/sim-${debtors}-s${seed}.jsonl.gz"

cargo build --release --quiet
mkdir -p target
./target/release/mora simulate --debtors "$debtors" --seed "$seed" --out "$events"
./target/release/mora train --kind payment --events "$events" --algorithm boosted-trees \
    --version "payment-sim-s${seed}" --out models/payment.json
./target/release/mora train --kind contact --events "$events" \
    --version "contact-sim-s${seed}" --out models/contact.json
