"""Who is acting: accounts and their passwords, server-side sessions, API tokens,
the sign-in throttle, the one-time set-up link and the append-only access log."""
