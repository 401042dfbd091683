"""Print GatiVersion rollouts as they happen, from the gati-operator event stream.

A tool outside the operator: plain nats-py and JSON, no gati packages. It owns a durable pull
consumer on the `GATI` stream, so after a restart it resumes where it stopped, and it needs only
the read-only permissions of the `tooling` user (docs/events.md, DESIGN §7): create and read its
consumer, ack, and receive replies on `_INBOX.>`; it can never publish onto the bus.

    python examples/external_subscriber.py --nats-url nats://tooling:PASSWORD@127.0.0.1:4222
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from typing import Any

import nats
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

STREAM = "GATI"
SUBJECTS = ["gati.cr.gativersion.*.*", "gati.status.gativersion.*.*"]


def describe(event: dict[str, Any]) -> str:
    """One line per event: a GatiVersion's state, or what a service did about it."""
    where = f"{event.get('namespace')}/{event.get('name')}"
    if event.get("schema") == "gati.change":
        spec = event["object"].get("spec", {})
        status = event["object"].get("status", {})
        return (
            f"{event['type']:<8} version {where} ({spec.get('versionId')}): "
            f"phase {status.get('phase', '-')}, weight {status.get('currentWeight', '-')}%, "
            f"step {status.get('currentStep', '-')}"
        )
    return (
        f"OUTCOME  version {where}: {event.get('service')} {event.get('action')} "
        f"{event.get('result')} ({event.get('reason')}) {event.get('message', '')}".rstrip()
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--nats-url", default=os.environ.get("GATI_NATS_URL", "nats://127.0.0.1:4222")
    )
    parser.add_argument("--creds", default=os.environ.get("GATI_NATS_CREDS"))
    parser.add_argument("--durable", default="rollout-printer")
    parser.add_argument("--count", type=int, default=0, help="stop after N events (0: never)")
    args = parser.parse_args()

    nc = await nats.connect(args.nats_url, user_credentials=args.creds)
    js = nc.jetstream()
    # Create the consumer by name (CONSUMER.CREATE, which the tooling user may call); creating
    # it again with the same config is a no-op, so a restart resumes from the last ack.
    await js.add_consumer(
        STREAM,
        ConsumerConfig(
            name=args.durable,
            durable_name=args.durable,
            filter_subjects=SUBJECTS,
            deliver_policy=DeliverPolicy.NEW,
            ack_policy=AckPolicy.EXPLICIT,
        ),
    )
    subscription = await js.pull_subscribe_bind(durable=args.durable, stream=STREAM)
    seen = 0
    try:
        while not args.count or seen < args.count:
            try:
                messages = await subscription.fetch(batch=50, timeout=5)
            except NatsTimeoutError:  # nothing new yet (nats-py raises instead of returning [])
                continue
            for msg in messages:
                try:
                    print(describe(json.loads(msg.data)), flush=True)
                except (ValueError, KeyError, TypeError, AttributeError) as error:
                    print(f"UNREADABLE on {msg.subject}: {error}", flush=True)
                await msg.ack()
                seen += 1
    finally:
        await nc.close()


if __name__ == "__main__":
    asyncio.run(main())
