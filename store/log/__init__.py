"""The log: events appended once and never changed, the commands that append them,
snapshots of long streams, the hash chain's verification, exports and the live feed."""
