"""A mora client in Python: waits for the server to be healthy, streams the
events of two debtors through Ingest.Stream, and scores them with a contact
plan. The client code is generated from ../../proto at start with
grpcio-tools, so it always matches the contract in the repository.

    python client.py 127.0.0.1:50051

Exits with a non-zero status, and says why, if anything is not as expected.
"""

import importlib
import os
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_tools import protoc

try:
    from importlib.resources import files
except ImportError:  # Python < 3.9
    from importlib_resources import files

PROTO_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "proto")


def generate(out_dir):
    """Generates the mora.v1 messages and stubs into `out_dir`; returns the
    modules of events and scoring."""
    well_known = str(files("grpc_tools") / "_proto")
    sources = [
        os.path.join("mora", "v1", name)
        for name in ("common.proto", "events.proto", "scoring.proto", "models.proto")
    ]
    status = protoc.main(
        ["grpc_tools.protoc", f"-I{PROTO_ROOT}", f"-I{well_known}",
         f"--python_out={out_dir}", f"--grpc_python_out={out_dir}"] + sources
    )
    if status != 0:
        sys.exit(f"generating code from {PROTO_ROOT} failed ({status})")
    sys.path.insert(0, out_dir)
    modules = {}
    for name in ("common_pb2", "events_pb2", "events_pb2_grpc", "scoring_pb2", "scoring_pb2_grpc"):
        modules[name] = importlib.import_module(f"mora.v1.{name}")
    return modules


def wait_until_serving(channel, service, timeout_s=60):
    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError:
            pass
        if time.monotonic() > deadline:
            sys.exit(f"{service or 'the server'} is not SERVING after {timeout_s} s")
        time.sleep(0.2)


def history(m, debtor, start, pays):
    """A profile, three monthly invoices with the account's standing, and
    payments and contacts as `pays` says."""
    events_pb2, common_pb2 = m["events_pb2"], m["common_pb2"]
    usd = lambda minor: common_pb2.Money(minor_units=minor, currency="USD")
    events = [
        events_pb2.Event(
            event_id=f"{debtor}-profile", debtor_id=debtor, occurred_at=start,
            profile=events_pb2.Profile(timezone="America/New_York", country="US")),
    ]
    for month in range(3):
        issued = start.ToDatetime(tzinfo=timezone.utc) + timedelta(days=30 * month)
        events.append(events_pb2.Event(
            event_id=f"{debtor}-inv-{month}", debtor_id=debtor,
            occurred_at=timestamp(issued),
            invoice_issued=events_pb2.InvoiceIssued(
                invoice_id=f"{debtor}-inv-{month}", amount=usd(12_000),
                due_at=timestamp(issued + timedelta(days=20)))))
        # The creditor's standing of the account at each statement: one more
        # cycle past due for every statement left unpaid.
        if pays:
            standing = dict(standing=events_pb2.ACCOUNT_STANDING_PAID_IN_FULL)
        elif month == 0:
            standing = dict(standing=events_pb2.ACCOUNT_STANDING_REVOLVING)
        else:
            standing = dict(standing=events_pb2.ACCOUNT_STANDING_DELINQUENT,
                            cycles_past_due=month)
        events.append(events_pb2.Event(
            event_id=f"{debtor}-status-{month}", debtor_id=debtor,
            occurred_at=timestamp(issued),
            account_status=events_pb2.AccountStatus(**standing)))
        if pays:
            events.append(events_pb2.Event(
                event_id=f"{debtor}-pay-{month}", debtor_id=debtor,
                occurred_at=timestamp(issued + timedelta(days=18)),
                payment=events_pb2.Payment(amount=usd(12_000))))
        events.append(events_pb2.Event(
            event_id=f"{debtor}-call-{month}", debtor_id=debtor,
            occurred_at=timestamp(issued + timedelta(days=25, hours=15)),
            contact=events_pb2.Contact(
                channel=common_pb2.CHANNEL_CALL,
                outcome=(events_pb2.CONTACT_OUTCOME_RIGHT_PARTY if pays
                         else events_pb2.CONTACT_OUTCOME_NO_ANSWER))))
    return events


def timestamp(moment):
    from google.protobuf.timestamp_pb2 import Timestamp
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def main():
    address = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051"
    with tempfile.TemporaryDirectory() as generated:
        m = generate(generated)
        channel = grpc.insecure_channel(address)
        wait_until_serving(channel, "")

        start = timestamp(datetime.now(timezone.utc) - timedelta(days=100))
        batches = [
            m["events_pb2"].EventBatch(batch_seq=1, events=history(m, "py-good", start, True)),
            m["events_pb2"].EventBatch(batch_seq=2, events=history(m, "py-late", start, False)),
        ]
        ingest = m["events_pb2_grpc"].IngestStub(channel)
        acks = list(ingest.Stream(iter(batches), timeout=30))
        for batch, ack in zip(batches, acks):
            if ack.batch_seq != batch.batch_seq or ack.rejected:
                sys.exit(f"batch {batch.batch_seq} not fully accepted: {ack}")
            print(f"batch {ack.batch_seq}: {ack.accepted} accepted, {ack.duplicates} duplicates")
        if len(acks) != len(batches):
            sys.exit(f"{len(acks)} acks for {len(batches)} batches")

        scoring = m["scoring_pb2_grpc"].ScoringStub(channel)
        scores = {}
        for debtor in ("py-good", "py-late"):
            score = scoring.Score(
                m["scoring_pb2"].ScoreRequest(debtor_id=debtor, include_contact_plan=True),
                timeout=10)
            if not score.known:
                sys.exit(f"{debtor} is unknown after ingest")
            scores[debtor] = score.p_pay
            reasons = ", ".join(f"{r.feature} {r.contribution:+.2f}" for r in score.reasons)
            print(f"{debtor}: p_pay {score.p_pay:.3f} ({reasons}); overdue "
                  f"{score.overdue.minor_units} {score.overdue.currency}")
            for slot in score.contact_plan.slots[:3]:
                print(f"  contact {m['common_pb2'].Channel.Name(slot.channel)} at "
                      f"{slot.local_start}: p_success {slot.p_success:.3f}")
        if not scores["py-good"] > scores["py-late"]:
            sys.exit(f"the debtor who pays scores no higher than the one who does not: {scores}")
        print("ok")


if __name__ == "__main__":
    main()
