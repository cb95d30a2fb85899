"""The store's key checks without ``cryptography`` (issue 19: it costs 8.5 MiB at start-up):
the standard-library checks agree with Fernet's, and opening a migrated database imports
``cryptography`` only when a secret is first encrypted or decrypted."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.store import KEY_ENV, Store, StoreError, check_key, load_key, new_key, signed_with
from bot_migrations.core import migrations as core


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


def test_signed_with_agrees_with_fernet() -> None:
    key, other = Fernet.generate_key(), Fernet.generate_key()
    token = Fernet(key).encrypt(b"bot-key-check").decode()
    assert signed_with(token, key)
    assert not signed_with(token, other)
    raw = bytearray(base64.urlsafe_b64decode(token))
    raw[30] ^= 1  # one bit of the ciphertext
    assert not signed_with(base64.urlsafe_b64encode(bytes(raw)).decode(), key)
    assert not signed_with("not a token", key)
    assert not signed_with(base64.urlsafe_b64encode(b"\x80short").decode(), key)


def test_keys_are_checked_like_fernet_does() -> None:
    key = new_key()
    Fernet(key)  # what we make, Fernet takes
    assert len(check_key(key)) == 32
    for bad in (b"short", b"!" * 44, base64.urlsafe_b64encode(os.urandom(31))):
        with pytest.raises(ValueError, match="32 url-safe base64-encoded bytes"):
            Fernet(bad)
        with pytest.raises(ValueError, match="32 url-safe base64-encoded bytes"):
            check_key(bad)
        with pytest.raises(ValueError, match="32 url-safe base64-encoded bytes"):
            Store(":memory:", key=bad)


def test_a_bad_env_key_is_still_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "not-a-key")
    with pytest.raises(StoreError, match=f"{KEY_ENV} is not a valid key"):
        load_key(None)


def test_a_wrong_key_file_is_refused_at_start_up_without_cryptography(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    store = Store(path)
    store.migrate([core])
    store.close()
    path.with_name("bot.db.key").write_bytes(new_key())
    store = Store(path)
    with pytest.raises(StoreError, match="does not match"):
        store.migrate([core])
    store.close()


def test_opening_a_migrated_database_imports_cryptography_only_for_a_secret(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bot.db"
    store = Store(path)
    store.migrate([core])
    store.set_link("console", "u1", "rooms", "alice", token="s3cret")
    store.close()
    script = textwrap.dedent(
        f"""
        import sys
        from bot.store import Store
        from bot_migrations.core import migrations
        store = Store({str(path)!r})
        store.migrate([migrations])
        link = store.get_link("console", "u1", "rooms")
        print("cryptography" in sys.modules, link.account)
        print(link.token, "cryptography" in sys.modules)
        """
    )
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "alice", "s3cret", "True"]
