"""Profiles: the single customer view built from the identity graph and the event log."""
