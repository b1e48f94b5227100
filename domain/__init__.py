"""The business: orders as a decider. Pure Python, no I/O."""
