"""Collection: Segment-spec message validation, the durable writer, write keys, importers."""
