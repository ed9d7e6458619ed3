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
# Each version names its feature schema's version, so that a server upgraded
# to a new schema imports the retrained model as a new version rather than
# finding the old one stored under the same name (tests/shipped_models.rs).
payment_schema=$(sed -n 's/^pub const SCHEMA_VERSION: u32 = \([0-9]*\);$/\1/p' src/features.rs)
contact_schema=$(sed -n 's/^pub const CONTACT_SCHEMA_VERSION: u32 = \([0-9]*\);$/\1/p' \
    src/features/contact.rs)
./target/release/mora train --kind payment --events "$events" --algorithm boosted-trees \
    --version "payment-sim-s${seed}-schema${payment_schema}" --out models/payment.json
./target/release/mora train --kind contact --events "$events" \
    --version "contact-sim-s${seed}-schema${contact_schema}" --out models/contact.json
