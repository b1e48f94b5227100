"""Workflows: subscriptions whose effects are messages and commands (customer notifications
through an outbox, draft expiry timers), and the leader-elected loops that act on them."""
