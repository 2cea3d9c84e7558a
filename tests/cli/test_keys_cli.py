"""`carecoin keys new/show`: key files are created 0600, never overwritten, and bad files fail in one line."""

from __future__ import annotations

import json
import stat

from click.testing import CliRunner

from cli.main import main
from ledger.keys import load_key


def run(*args):
    return CliRunner().invoke(main, list(args))


def test_keys_new_writes_a_0600_key_file_and_prints_its_account_id(tmp_path):
    out = tmp_path / "alice.key"
    result = run("keys", "new", "--out", str(out))
    assert result.exit_code == 0, result.output
    key = load_key(out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert key.public_key.hex() in result.output
    assert key.seed.hex() not in result.output


def test_keys_new_json_prints_the_public_key(tmp_path):
    out = tmp_path / "k" / "bob.key"
    result = run("keys", "new", "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["public_key"] == doc["account_id"] == load_key(out).public_key.hex()
    assert "secret_key" not in doc


def test_keys_new_refuses_to_overwrite_an_existing_file(tmp_path):
    out = tmp_path / "alice.key"
    assert run("keys", "new", "--out", str(out)).exit_code == 0
    before = out.read_bytes()
    result = run("keys", "new", "--out", str(out))
    assert result.exit_code == 1
    assert "refusing to overwrite" in result.output and "Traceback" not in result.output
    assert out.read_bytes() == before


def test_keys_new_requires_out():
    result = run("keys", "new")
    assert result.exit_code == 2 and "--out" in result.output


def test_keys_show_prints_the_account_id_never_the_secret(tmp_path):
    out = tmp_path / "alice.key"
    run("keys", "new", "--out", str(out))
    key = load_key(out)
    text = run("keys", "show", str(out))
    assert text.exit_code == 0 and key.public_key.hex() in text.output
    as_json = run("keys", "show", str(out), "--json")
    assert json.loads(as_json.output)["public_key"] == key.public_key.hex()
    assert key.seed.hex() not in text.output + as_json.output


def test_keys_show_refuses_missing_readable_by_others_and_malformed_files(tmp_path):
    missing = run("keys", "show", str(tmp_path / "nope.key"))
    assert missing.exit_code == 1 and "does not exist" in missing.output
    out = tmp_path / "alice.key"
    run("keys", "new", "--out", str(out))
    out.chmod(0o644)
    loose = run("keys", "show", str(out))
    assert loose.exit_code == 1 and "0600" in loose.output
    bad = tmp_path / "bad.key"
    bad.write_text("not json")
    bad.chmod(0o600)
    malformed = run("keys", "show", str(bad))
    assert malformed.exit_code == 1 and "not JSON" in malformed.output
    for r in (missing, loose, malformed):
        assert r.output.startswith("Error: ") and len(r.output.strip().splitlines()) == 1


def test_version_and_help_list_the_command_groups():
    version = run("--version")
    assert version.exit_code == 0 and "carecoin" in version.output
    help_ = run("--help")
    assert help_.exit_code == 0 and "keys" in help_.output and "receipt" in help_.output


def test_an_unwritable_key_path_fails_in_one_line_without_a_traceback(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run("keys", "new", "--out", str(blocker / "sub" / "alice.key"))
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and len(result.output.strip().splitlines()) == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
