"""The read side: the inline order read model, catch-up subscriptions that never skip an
event, the projections they run, and replay that rebuilds any of them from the log."""
