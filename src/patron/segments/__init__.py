"""Segments: the query language, dynamic and static segments, RFM, clusters."""
