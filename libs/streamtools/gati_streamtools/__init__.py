"""Reading the `GATI` stream for people: history, tail, export, routes at a past instant, replay.

Where to look:
- `positions` — `--since`/`--until` arguments (RFC 3339, relative `10m`, or a stream sequence).
- `reader` — the one I/O edge: an ordered consumer over a range of the stream.
- `records` — a stored message with its decoded event (or why it could not be decoded), and the
  export line format.
- `timeline` — one object's history: changes, spec diffs, status transitions, linked outcomes.
- `routes_at` — the routing table as of an instant, folded from `gati.routes.>` events.
- `live_routes` — the routing table now, each key's last value read from the KV bucket's stream
  (what `routes` and `dev`'s live view show).
- `replay` — feeding recorded events to a service's pure decision logic (the reconciler's
  here); `republish` prefixes.
- `manifest_changes` — the reconciler's diff of two renderings, walking only where they differ
  (the reconciler replay's diff of every spec change).
- `replay_timescape` — the same for timescape: rollout, decommission and routing decisions at
  each event's stream time and at the deadlines between events.
- `replay_scaler` — the same for the scaler: replica decisions over traffic windows folded from
  `GATI_METRICS`, on each sample and each tick between events; the HPA of mode `hpa`.
- `bus` — connecting a command to NATS with the `GATI_*` settings.
"""
