"""Identity resolution: identifier normalisation, the identity graph, merge rules, matching."""
