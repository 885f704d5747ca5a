"""client/s3.py: the destination reader, the owner.txt pre-flight, presigned part copies."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from test_emulator_storage_support import make_bucket

from synapse_declare.client.s3 import (
    DestinationReader,
    PartCopier,
    check_owner_txt,
    normalise_endpoint,
    owner_tokens,
    owner_txt_key,
)
from synapse_declare.emulator import Emulator
from synapse_declare.emulator.server import S3_ACCESS_KEY, S3_SECRET_KEY
from synapse_declare.errors import LockError, MigrationError, PartCopyError, S3AccessError
from synapse_declare.journal import Journal
from synapse_declare.redact import redact_text


def _reader(emu: Emulator, chunk: int = 1024 * 1024) -> DestinationReader:
    return DestinationReader(
        DestinationReader.from_settings(
            emu.s3_endpoint,
            region="us-east-1",
            access_key_id=S3_ACCESS_KEY,
            secret_access_key=S3_SECRET_KEY,
        ).client,
        chunk_size=chunk,
    )


def test_reader_streams_md5_in_chunks_and_heads_size(emu: Emulator) -> None:
    bucket = make_bucket(emu, owner=None)
    data = os.urandom(3 * 1024 * 1024 + 17)
    emu.s3_client().put_object(Bucket=bucket, Key="a/b.bin", Body=data)
    reader = _reader(emu, chunk=64 * 1024)
    assert reader.head(bucket, "a/b.bin") == len(data)
    assert reader.md5(bucket, "a/b.bin") == hashlib.md5(data).hexdigest()
    assert reader.size_and_md5(bucket, "a/b.bin") == (len(data), hashlib.md5(data).hexdigest())


def test_reader_errors_are_typed_and_name_the_object(emu: Emulator) -> None:
    bucket = make_bucket(emu, owner=None)
    with pytest.raises(S3AccessError, match=f"s3://{bucket}/missing"):
        _reader(emu).md5(bucket, "missing")
    no_credentials = DestinationReader.from_settings(emu.s3_endpoint, region="us-east-1")
    with pytest.raises(S3AccessError) as caught:
        no_credentials.head(bucket, "missing")
    assert caught.value.code == "NoCredentialsError"
    assert caught.value.hint is not None and "AWS_ACCESS_KEY_ID" in caught.value.hint


def test_reader_from_settings_refuses_an_unknown_profile(emu: Emulator) -> None:
    from synapse_declare.errors import ConfigError

    with pytest.raises(ConfigError, match="profile 'nope' not found"):
        DestinationReader.from_settings(emu.s3_endpoint, profile="nope")


def test_explicit_secrets_are_registered_for_redaction(emu: Emulator) -> None:
    secret = "canary-secret-" + os.urandom(6).hex()
    DestinationReader.from_settings(
        emu.s3_endpoint, access_key_id="AKIDEXAMPLE", secret_access_key=secret
    )
    assert secret not in redact_text(f"oops {secret}")


def test_endpoint_normalisation() -> None:
    assert normalise_endpoint(None) is None
    assert normalise_endpoint("https://s3.amazonaws.com") is None
    assert normalise_endpoint("s3.amazonaws.com") is None
    assert normalise_endpoint("minio.example.org:9000/") == "https://minio.example.org:9000"
    assert normalise_endpoint("http://127.0.0.1:1234") == "http://127.0.0.1:1234"


# ---------------------------------------------------------------------------------------------
# owner.txt


def test_owner_txt_parsing_follows_synapse() -> None:
    assert owner_txt_key(None) == "owner.txt"
    assert owner_txt_key(" /lab/data/ ") == "lab/data/owner.txt"
    assert owner_txt_key("/") == "owner.txt"
    text = "Alice , 3350000\n\n,team-1,\n" + "x\n" * 200 + "late\n"
    tokens = owner_tokens(text)
    assert tokens[:3] == ["alice", "3350000", "team-1"]
    assert "late" not in tokens  # only the first 100 lines count


def _check(emu: Emulator, bucket: str, base_key: str | None = None, **kwargs: Any) -> Any:
    return check_owner_txt(
        bucket,
        base_key,
        kwargs.pop("ids", ["alice", 3350000]),
        endpoint_url=emu.s3_endpoint,
        client=kwargs.pop("client", emu.s3_client()),
        **kwargs,
    )


def test_owner_txt_checks(emu: Emulator) -> None:
    s3 = emu.s3_client()
    good = make_bucket(emu, owner="bob,ALICE", base_key="lab")
    result = _check(emu, good, "/lab/")
    assert result.ok and result.matched == "alice" and result.key == "lab/owner.txt"

    missing_bucket = _check(emu, "no-such-bucket-" + os.urandom(4).hex())
    assert missing_bucket.checked and not missing_bucket.exists
    assert missing_bucket.error is not None and "Did not find S3 bucket" in missing_bucket.error

    no_object = make_bucket(emu, owner=None)
    result = _check(emu, no_object)
    assert (result.checked, result.exists, result.ok) == (True, False, False)
    assert result.error == f"Did not find S3 object at key owner.txt from bucket {no_object}"
    instruction = result.instruction("alice")
    assert f"s3://{no_object}/owner.txt" in instruction and "'alice'" in instruction

    empty = make_bucket(emu, owner="  \n , \n")
    result = _check(emu, empty)
    assert result.exists and not result.matches
    assert result.error is not None and result.error.startswith("No user identifier found")

    other = make_bucket(emu, owner="bob")
    result = _check(emu, other)
    assert result.exists and not result.matches
    assert result.error is not None and "Could not find a valid user identifier" in result.error

    s3.put_object(Bucket=other, Key="owner.txt", Body=b"carol\n3350000\n")
    assert _check(emu, other).matched == "3350000"


def test_owner_txt_without_credentials_is_unchecked_not_failed(emu: Emulator) -> None:
    bucket = make_bucket(emu, owner="alice")
    result = check_owner_txt(bucket, None, ["alice"], endpoint_url=emu.s3_endpoint)
    assert not result.checked and not result.ok
    assert result.error is not None and "no AWS credentials" in result.error


# ---------------------------------------------------------------------------------------------
# Part copies


def test_part_copier_reports_s3_errors_without_the_url(emu: Emulator) -> None:
    copier = PartCopier()
    url = f"{emu.s3_endpoint}/no-such-bucket/key?partNumber=1&uploadId=x&X-Amz-Signature=abc123"
    with pytest.raises(PartCopyError) as caught:
        copier.copy_part(url, {"x-amz-copy-source": "nowhere/at-all"}, what="part 1 of f")
    text = str(caught.value)
    assert text.startswith("part 1 of f: S3 answered")
    assert "abc123" not in text and "http" not in text
    copier.close()


def test_part_copier_on_a_dead_endpoint_names_no_url() -> None:
    copier = PartCopier(retries=0)
    with pytest.raises(PartCopyError) as caught:
        copier.copy_part(
            "http://127.0.0.1:9/b/k?X-Amz-Signature=secretsig", None, what="part 2 of g"
        )
    assert "secretsig" not in str(caught.value)
    assert caught.value.status is None
    copier.close()


# ---------------------------------------------------------------------------------------------
# Journal units


def _open(tmp_path: Path, **overrides: Any) -> Journal:
    values: dict[str, Any] = {
        "endpoint": "http://x/repo/v1",
        "user_id": 1,
        "container_id": "syn1",
        "destination_id": 10,
        "strategy": "latest",
    }
    values.update(overrides)
    return Journal.open(tmp_path, **values)


def test_journal_lock_is_exclusive_and_released_on_close(tmp_path: Path) -> None:
    first = _open(tmp_path)
    with pytest.raises(LockError, match="pid"):
        _open(tmp_path)
    first.close()
    _open(tmp_path).close()


def test_journal_settings_mismatch_and_archive(tmp_path: Path) -> None:
    with _open(tmp_path) as journal:
        journal.copy_started(
            "5", upload_id="9", part_size=5, associate_entity="syn2", size=1, md5="m"
        )
    with pytest.raises(MigrationError, match="different settings"):
        _open(tmp_path, destination_id=11)
    with _open(tmp_path) as journal:
        assert journal.resumed
        assert journal.copy("5") is not None
        journal.mark_finished()
    with _open(tmp_path, destination_id=11) as journal:
        assert not journal.resumed
        assert journal.copy("5") is None
    assert list((tmp_path / "migrations").glob("*.finished-*"))


def test_a_damaged_journal_is_a_clear_error(tmp_path: Path) -> None:
    with _open(tmp_path) as journal:
        path = journal.path
    path.write_bytes(b"this is not sqlite" * 100)
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    with pytest.raises(MigrationError, match="cannot be used") as caught:
        _open(tmp_path)
    assert caught.value.hint is not None and "move it aside" in caught.value.hint
    _open(tmp_path.joinpath("elsewhere")).close()
