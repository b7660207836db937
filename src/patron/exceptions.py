"""The one exception tree of Patron.

Every error Patron raises on purpose derives from :class:`PatronError`, so a caller
can catch one class. Each subclass keeps its fields and builds a message that says
what to do next. The CLI prints ``str(error)`` on one line and exits non-zero; the
HTTP layer maps ``http_status`` and ``code`` onto a JSON body.

    PatronError
    ├── ConfigError                      settings that cannot be used
    ├── StoreError                       patron.store.exceptions
    │   ├── StoreLocked                  another process holds the store file
    │   ├── StoreUnavailable             the store cannot be written (disk full, read-only)
    │   ├── StoreVersionError            the file was written by an unknown schema version
    │   ├── LakeError                    a lake (Parquet by day) cannot be written or read where asked
    │   ├── BackendUnavailable           PATRON_BACKEND's engine cannot start (pyspark, Java)
    │   └── NotOnThisStore               an operation the chosen store does not do (Spark: collect)
    ├── CollectError                     patron.collect.exceptions
    │   ├── InvalidMessage               one message breaks the tracking spec (field, reason)
    │   ├── InvalidPayload               a request body is not usable at all (JSON, gzip, size)
    │   ├── AuthenticationError          missing, unknown or revoked key, or the wrong scope
    │   └── WriterClosed                 the durable writer is stopping
    ├── KeyNameError                     patron.collect.exceptions: malformed or taken key name
    ├── UnknownKey                       patron.collect.exceptions: no active key by that name
    ├── ImportFileError                  patron.collect.importers.exceptions: unreadable file,
    │   └── MissingColumn                bad mapping; a mapped column the file lacks
    ├── ProfilesError                    patron.profiles.exceptions
    │   └── ProfilesNotBuilt             profiles asked for before `patron profiles build`
    ├── SegmentError                     patron.segments.exceptions: a bad name, file or option
    │   ├── SegmentQueryError            a query that cannot be used (token, column, what was expected)
    │   ├── UnknownSegment               no segment by that name
    │   ├── SegmentExists                the name is taken
    │   ├── SegmentInUse                 other segments refer to it (in_segment)
    │   ├── SegmentCycle                 in_segment references that loop back
    │   └── ClusteringUnavailable        scikit-learn (patron[cluster]) is not installed
    └── IdentityError                    patron.identity.exceptions
        ├── UnknownProfile               no profile id or identifier by that name
        ├── NotResolved                  the identity graph is not built yet
        ├── MatchingUnavailable          Splink (patron[match]) is not installed
        ├── InvalidMatchInput            records the probabilistic matcher cannot use
        ├── InvalidEdges                 identity.clusters: edges that are not a graph
        └── ComponentsNotConverged       identity.clusters: labels still changing after the last round
"""

from __future__ import annotations


class PatronError(Exception):
    """Root of every error Patron raises on purpose."""

    #: HTTP status the API answers with when this error escapes a handler.
    http_status: int = 500
    #: Stable machine-readable code for JSON error bodies.
    code: str = "internal_error"


class ConfigError(PatronError, ValueError):
    """A setting has a value Patron cannot use."""

    http_status = 500
    code = "config_error"
