"""Everything that talks to PostgreSQL, in three parts and their plumbing.

- `store.log`: the append-only event log, the command handler, snapshots,
  the hash chain's verification, exports and the live feed.
- `store.read`: read models, catch-up subscriptions and replay.
- `store.workflows`: the outbox of customer notifications, draft expiry and
  the loops that act on them.

`database`, `migrations` and `leader` are the plumbing the three share.
"""
