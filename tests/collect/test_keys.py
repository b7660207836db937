"""Key creation, hashing, scopes and revocation."""

from __future__ import annotations

import pytest

from patron.collect.exceptions import AuthenticationError
from patron.collect.exceptions import KeyNameError, UnknownKey
from patron.collect.keys import hash_key
from patron.workspace import Workspace


def test_key_is_stored_only_as_a_hash(workspace: Workspace) -> None:
    new = workspace.keys.create("web", "write")
    assert new.key.startswith("pk_") and len(new.key) >= 32
    [record] = workspace.keys.list()
    assert record.key_hash == hash_key(new.key) and new.key not in repr(record)
    assert record.source_id == "web" and record.key_prefix == new.key[:7]


def test_authenticate_checks_scope_and_revocation(workspace: Workspace) -> None:
    write = workspace.keys.create("web", "write", source_id="website").key
    read = workspace.keys.create("bi", "read").key
    assert workspace.keys.authenticate(write, scope="write").source_id == "website"
    with pytest.raises(AuthenticationError, match="scope 'read'"):
        workspace.keys.authenticate(read, scope="write")
    with pytest.raises(AuthenticationError, match="required"):
        workspace.keys.authenticate(None, scope="write")
    workspace.keys.revoke("web")
    with pytest.raises(AuthenticationError, match="unknown or revoked"):
        workspace.keys.authenticate(write, scope="write")


@pytest.mark.parametrize(("name", "scope"), [("", "write"), ("has space", "write"), ("ok", "root")])
def test_bad_names_and_scopes_are_refused(workspace: Workspace, name: str, scope: str) -> None:
    with pytest.raises(KeyNameError):
        workspace.keys.create(name, scope)


def test_duplicate_name_and_unknown_revoke(workspace: Workspace) -> None:
    workspace.keys.create("web", "write")
    with pytest.raises(KeyNameError, match="already exists"):
        workspace.keys.create("web", "read")
    with pytest.raises(UnknownKey, match="patron keys list"):
        workspace.keys.revoke("nope")


def test_revocation_by_another_process_is_seen_after_the_cache_time(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from patron.collect import keys as keys_module
    from patron.collect.keys import KeyRing

    key = workspace.keys.create("web", "write").key
    server_ring = KeyRing(workspace.store)  # as a running server would hold it
    assert server_ring.authenticate(key, scope="write").name == "web"
    workspace.keys.revoke("web")  # another KeyRing: the server's cache does not know yet
    assert server_ring.authenticate(key, scope="write").name == "web"
    monkeypatch.setattr(keys_module, "KEY_CACHE_SECONDS", 0.0)
    with pytest.raises(AuthenticationError, match="revoked"):
        server_ring.authenticate(key, scope="write")
