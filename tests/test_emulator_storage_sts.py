"""STS credentials (synapse-api.md §8) and how far the embedded S3 enforces them.

The credentials come from moto's STS; moto does not enforce session policies, so the emulator's
S3 gateway does (docs/emulator.md, "Storage and STS fidelity"). These tests use boto3 exactly as a
user of ``synapse get-sts-token`` would, against the emulator's S3 endpoint.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
import requests
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError
from test_emulator_storage_support import (
    MIB,
    S3_FILE_HANDLE,
    external_location,
    file_entity,
    make_bucket,
    md5_hex,
    set_locations,
    synapse_sts_location,
    upload,
)

from synapse_declare.emulator import Emulator, s3gate, sts

ApiFactory = Callable[..., Any]


def _name() -> str:
    return f"sts-{uuid.uuid4().hex[:10]}"


def s3_with(emulator: Emulator, credentials: dict[str, Any], **overrides: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=emulator.s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=overrides.get("key", credentials["accessKeyId"]),
        aws_secret_access_key=overrides.get("secret", credentials["secretAccessKey"]),
        aws_session_token=overrides.get("token", credentials["sessionToken"]),
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def denied(call: Callable[[], Any], code: str = "AccessDenied") -> bool:
    try:
        call()
    except ClientError as exc:
        error = exc.response.get("Error", {})
        return error.get("Code") in (code, "403" if code == "AccessDenied" else code)
    return False


def sts_folder(api: Any, location: int, project_id: str | None = None) -> dict[str, Any]:
    project_id = project_id or api.project(_name())["id"]
    folder = api.folder(f"sts-{uuid.uuid4().hex[:6]}", project_id)
    set_locations(api, folder["id"], [location])
    return folder


def share(api: Any, entity_id: str, principal_id: int, access: list[str]) -> None:
    acl = api.ok("GET", f"/entity/{entity_id}/acl")
    acl["resourceAccess"].append({"principalId": principal_id, "accessType": access})
    api.ok("PUT", f"/entity/{entity_id}/acl", acl)


# ---------------------------------------------------------------------------------------------
# The endpoint's rules


def test_sts_endpoint_rules(shared_emulator: Emulator, alice: Any, bob: Any) -> None:
    project = alice.project(_name())
    plain = alice.folder("plain", project["id"])
    assert alice.error(400, "GET", f"/entity/{plain['id']}/sts", permission="read_only") == (
        "Entity must have a project setting"
    )
    set_locations(alice, plain["id"], [1])
    assert alice.error(400, "GET", f"/entity/{plain['id']}/sts", permission="read_only") == (
        "Entity must have an STS-enabled storage location"
    )
    folder = sts_folder(alice, synapse_sts_location(alice)["storageLocationId"], project["id"])
    path = f"/entity/{folder['id']}/sts"
    assert alice.error(400, "GET", path, permission="read_write") == (
        "STS write access is not allowed in Synapse storage"
    )
    assert alice.error(400, "GET", path) == (
        "Required request parameter 'permission' for method parameter type StsPermission is not "
        "present"
    )
    assert alice.error(400, "GET", path, permission="admin").endswith("StsPermission.admin")
    assert alice.error(404, "GET", "/entity/syn999999999/sts", permission="read_only") == (
        "Resource: 'syn999999999' does not exist"
    )
    assert bob.error(403, "GET", path, permission="read_only") == (
        "You lack DOWNLOAD access to the requested entity."
    )
    bucket = make_bucket(shared_emulator, base_key="team")
    external = external_location(alice, bucket, "team", sts=True)["storageLocationId"]
    ext_folder = sts_folder(alice, external, project["id"])
    share(alice, project["id"], shared_emulator.principal_ids["bob"], ["READ", "DOWNLOAD"])
    assert bob.ok("GET", f"/entity/{ext_folder['id']}/sts", permission="read_only")["bucket"] == (
        bucket
    )
    assert bob.error(403, "GET", f"/entity/{ext_folder['id']}/sts", permission="read_write") == (
        "You lack UPDATE access to the requested entity."
    )


def test_read_only_credentials_on_synapse_storage(shared_emulator: Emulator, alice: Any) -> None:
    location = synapse_sts_location(alice)
    folder = sts_folder(alice, location["storageLocationId"])
    sub = alice.folder("deeper", folder["id"])
    data = b"readable through STS"
    handle = upload(alice, data, "r.txt", location=location["storageLocationId"])
    file_entity(alice, sub["id"], handle["id"])
    elsewhere = upload(alice, b"default storage")  # same bucket, outside the base key
    credentials = alice.ok("GET", f"/entity/{sub['id']}/sts", permission="read_only")
    assert credentials["bucket"] == shared_emulator.synapse_bucket
    assert credentials["baseKey"] == location["baseKey"]
    assert credentials["accessKeyId"].startswith("ASIA")
    expires = datetime.strptime(credentials["expiration"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=UTC
    )
    assert timedelta(hours=11, minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=12)
    s3 = s3_with(shared_emulator, credentials)
    bucket, base = credentials["bucket"], credentials["baseKey"]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=base + "/")
    assert [item["Key"] for item in listed["Contents"]] == [handle["key"]]
    assert s3.list_objects_v2(Bucket=bucket, Prefix=base)["KeyCount"] == 1
    assert s3.get_object(Bucket=bucket, Key=handle["key"])["Body"].read() == data
    assert s3.head_object(Bucket=bucket, Key=handle["key"])["ContentLength"] == len(data)
    assert denied(lambda: s3.put_object(Bucket=bucket, Key=f"{base}/new.txt", Body=b"no"))
    assert denied(lambda: s3.delete_object(Bucket=bucket, Key=handle["key"]))
    assert denied(lambda: s3.list_objects_v2(Bucket=bucket))
    assert denied(lambda: s3.list_objects_v2(Bucket=bucket, Prefix=str(elsewhere["key"])[:8]))
    assert denied(lambda: s3.get_object(Bucket=bucket, Key=elsewhere["key"]))
    assert denied(lambda: s3.head_object(Bucket=bucket, Key=elsewhere["key"]))
    assert denied(s3.list_buckets)
    # A presigned URL made with the STS credentials carries the same rights.
    inside = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": handle["key"]}
    )
    assert requests.get(inside, timeout=30).content == data
    outside = s3.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": elsewhere["key"]}
    )
    assert requests.get(outside, timeout=30).status_code == 403


def test_read_write_credentials_on_an_external_bucket(
    shared_emulator: Emulator, alice: Any, tmp_path: Any
) -> None:
    bucket = make_bucket(shared_emulator, base_key="lab/raw")
    location = external_location(alice, bucket, "lab/raw", sts=True)["storageLocationId"]
    folder = sts_folder(alice, location)
    credentials = alice.ok("GET", f"/entity/{folder['id']}/sts", permission="read_write")
    assert credentials["bucket"] == bucket and credentials["baseKey"] == "lab/raw"
    s3 = s3_with(shared_emulator, credentials)
    key = f"lab/raw/{uuid.uuid4()}/written.txt"
    s3.put_object(Bucket=bucket, Key=key, Body=b"written with STS")
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"written with STS"
    big = tmp_path / "big.bin"
    big.write_bytes(b"m" * (6 * MIB))
    s3.upload_file(
        str(big),
        bucket,
        f"lab/raw/{uuid.uuid4()}/big.bin",
        Config=TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB),
    )
    listing = s3.list_objects_v2(Bucket=bucket, Prefix="lab/raw/")
    assert {key} < {item["Key"] for item in listing["Contents"]}
    assert denied(lambda: s3.put_object(Bucket=bucket, Key="lab/other.txt", Body=b"x"))
    assert denied(lambda: s3.put_object(Bucket=bucket, Key="lab/raw/owner.txt", Body=b"me"))
    assert denied(lambda: s3.get_object(Bucket=bucket, Key="lab/raw/owner.txt"))
    assert denied(lambda: s3.list_objects_v2(Bucket=bucket, Prefix="lab/"))
    assert denied(
        lambda: s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": key}, {"Key": "lab/raw/owner.txt"}]}
        )
    )
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": key}]})
    assert denied(lambda: s3.head_object(Bucket=bucket, Key=key), code="404")
    # SPC's boto STS upload path: write under the base key, then register the object.
    sts_key = f"lab/raw/{uuid.uuid4()}/via-sts.csv"
    s3.put_object(Bucket=bucket, Key=sts_key, Body=b"a,b\n")
    handle = alice.ok(
        "POST",
        "/file/v1/externalFileHandle/s3",
        {
            "concreteType": S3_FILE_HANDLE,
            "bucketName": bucket,
            "key": sts_key,
            "contentMd5": md5_hex(b"a,b\n"),
            "storageLocationId": location,
            "fileName": "via-sts.csv",
        },
    )
    assert file_entity(alice, folder["id"], handle["id"])["dataFileHandleId"] == handle["id"]


def test_forged_or_expired_credentials(shared_emulator: Emulator, alice: Any) -> None:
    bucket = make_bucket(shared_emulator, base_key="k")
    location = external_location(alice, bucket, "k", sts=True)["storageLocationId"]
    folder = sts_folder(alice, location)
    credentials = alice.ok("GET", f"/entity/{folder['id']}/sts", permission="read_write")
    key = "k/object.txt"
    wrong_token = s3_with(shared_emulator, credentials, token="forged-token")
    assert denied(lambda: wrong_token.put_object(Bucket=bucket, Key=key, Body=b"x"), "InvalidToken")
    wrong_secret = s3_with(shared_emulator, credentials, secret="not-the-secret")
    assert denied(
        lambda: wrong_secret.put_object(Bucket=bucket, Key=key, Body=b"x"), "SignatureDoesNotMatch"
    )
    gateway = s3gate.ensure_gateway(shared_emulator)
    assert gateway is not None
    grant = gateway.grants[credentials["accessKeyId"]]
    gateway.grant(
        credentials["accessKeyId"], dataclasses.replace(grant, expires_at=time.time() - 1)
    )
    try:
        expired = s3_with(shared_emulator, credentials)
        assert denied(lambda: expired.put_object(Bucket=bucket, Key=key, Body=b"x"), "ExpiredToken")
    finally:
        gateway.grant(credentials["accessKeyId"], grant)


def test_credentials_survive_a_restart(
    make_emulator: Callable[..., Emulator], api_for: ApiFactory, tmp_path: Any
) -> None:
    data_dir = tmp_path / "data"
    first = make_emulator(data_dir=data_dir)
    api = api_for(first, "alice")
    bucket = make_bucket(first, base_key="keep")
    location = external_location(api, bucket, "keep", sts=True)["storageLocationId"]
    folder = sts_folder(api, location)
    credentials = api.ok("GET", f"/entity/{folder['id']}/sts", permission="read_only")
    first.stop()
    second = make_emulator(data_dir=data_dir)
    api = api_for(second, "alice")
    api.ok("GET", f"/entity/{folder['id']}/sts", permission="read_only")
    s3 = s3_with(second, credentials)
    assert s3.list_objects_v2(Bucket=bucket, Prefix="keep/")["KeyCount"] == 1  # owner.txt
    assert denied(lambda: s3.get_object(Bucket=bucket, Key="keep/owner.txt"))
    assert denied(lambda: s3.put_object(Bucket=bucket, Key="keep/x", Body=b"x"))


# ---------------------------------------------------------------------------------------------
# The policy itself


def test_session_policy_document() -> None:
    policy = sts.session_policy("bucket", "base/key", "read_only")
    assert policy["Statement"] == [
        {
            "Sid": "ListParentBuckets",
            "Action": ["s3:ListBucket*"],
            "Effect": "Allow",
            "Resource": ["arn:aws:s3:::bucket"],
            "Condition": {"StringEquals": {"s3:prefix": ["base/key"]}},
        },
        {
            "Sid": "ListBucketAccess",
            "Action": ["s3:ListBucket*"],
            "Effect": "Allow",
            "Resource": ["arn:aws:s3:::bucket"],
            "Condition": {"StringLike": {"s3:prefix": ["base/key/*"]}},
        },
        {
            "Sid": "FolderAccess",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:ListBucket"],
            "Resource": ["arn:aws:s3:::bucket/base/key", "arn:aws:s3:::bucket/base/key/*"],
        },
        {
            "Sid": "DenyOwnerTxt",
            "Effect": "Deny",
            "Action": ["s3:*"],
            "Resource": ["arn:aws:s3:::bucket/base/key/owner.txt"],
        },
    ]


@pytest.mark.parametrize(
    ("base", "permission", "action", "resource", "prefix", "allowed"),
    [
        ("b", "read_only", "s3:ListBucket", "bkt", "b", True),
        ("b", "read_only", "s3:ListBucket", "bkt", "b/x/", True),
        ("b", "read_only", "s3:ListBucket", "bkt", "bx", False),
        ("b", "read_only", "s3:ListBucket", "bkt", None, False),
        ("b", "read_only", "s3:ListBucketMultipartUploads", "bkt", "b/", True),
        ("b", "read_only", "s3:GetObject", "bkt/b/f", None, True),
        ("b", "read_only", "s3:GetObject", "bkt/bf", None, False),
        ("b", "read_only", "s3:PutObject", "bkt/b/f", None, False),
        ("b", "read_write", "s3:PutObject", "bkt/b/f", None, True),
        ("b", "read_write", "s3:PutObject", "bkt/b/owner.txt", None, False),
        ("b", "read_write", "s3:PutObjectTagging", "bkt/b/f", None, False),
        (None, "read_only", "s3:ListBucket", "bkt", None, True),
        (None, "read_only", "s3:GetObject", "bkt/any/thing", None, True),
        (None, "read_only", "s3:GetObject", "bkt/owner.txt", None, False),
        (None, "read_only", "s3:GetObject", "other/x", None, False),
    ],
)
def test_policy_evaluation(
    base: str | None, permission: str, action: str, resource: str, prefix: str | None, allowed: bool
) -> None:
    grant = s3gate.Grant("s", "t", time.time() + 60, "bkt", base, permission)
    assert s3gate.policy_allows(grant, action, resource, prefix) is allowed
