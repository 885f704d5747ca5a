"""STS credentials for STS-enabled storage (synapse-api.md §8; StsManagerImpl).

Credentials are real temporary credentials from moto's STS (AssumeRole, 12 hours, with Synapse's
session policy attached). moto itself does not enforce session policies, so each issued credential
is also registered with the S3 gateway (``s3gate``), which enforces the policy, the session token,
the signature and the expiry on the embedded S3 server.
"""

from __future__ import annotations

import json
import weakref
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from . import nodes, s3gate, storage
from .routing import Route
from .util import bad_request, format_time, parse_syn_id, syn

if TYPE_CHECKING:
    from .app import Ctx
    from .server import Emulator

SCHEMA = ""

DURATION_SECONDS = 12 * 60 * 60
ROLE_ARN = "arn:aws:iam::123456789012:role/synapse-emulator-sts"
POLICY_ACTIONS = {
    "read_only": ["s3:GetObject", "s3:ListBucket"],
    "read_write": [
        "s3:AbortMultipartUpload",
        "s3:DeleteObject",
        "s3:GetObject",
        "s3:ListBucket",
        "s3:ListMultipartUploadParts",
        "s3:PutObject",
        "s3:ListBucketMultipartUploads",
        "s3:PutObjectAcl",
    ],
}

_STS_CLIENTS: weakref.WeakKeyDictionary[Emulator, Any] = weakref.WeakKeyDictionary()


def _sts(emulator: Emulator) -> Any:
    client = _STS_CLIENTS.get(emulator)
    if client is None:
        client = emulator.sts_client()
        _STS_CLIENTS[emulator] = client
    return client


def session_policy(bucket: str, base_key: str | None, permission: str) -> dict[str, Any]:
    """Synapse's sts-policy-template.json, filled in."""
    folder = base_key or ""
    bucket_with_folder = f"{bucket}/{base_key}" if base_key else bucket
    with_slash = f"{base_key}/" if base_key else ""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ListParentBuckets",
                "Action": ["s3:ListBucket*"],
                "Effect": "Allow",
                "Resource": [f"arn:aws:s3:::{bucket}"],
                "Condition": {"StringEquals": {"s3:prefix": [folder]}},
            },
            {
                "Sid": "ListBucketAccess",
                "Action": ["s3:ListBucket*"],
                "Effect": "Allow",
                "Resource": [f"arn:aws:s3:::{bucket}"],
                "Condition": {"StringLike": {"s3:prefix": [f"{with_slash}*"]}},
            },
            {
                "Sid": "FolderAccess",
                "Effect": "Allow",
                "Action": POLICY_ACTIONS[permission],
                "Resource": [
                    f"arn:aws:s3:::{bucket_with_folder}",
                    f"arn:aws:s3:::{bucket_with_folder}/*",
                ],
            },
            {
                "Sid": "DenyOwnerTxt",
                "Effect": "Deny",
                "Action": ["s3:*"],
                "Resource": [f"arn:aws:s3:::{bucket_with_folder}/owner.txt"],
            },
        ],
    }


def get_credentials(ctx: Ctx, entity_id: str) -> dict[str, Any]:
    store, caller = ctx.store, ctx.caller
    permission = ctx.args.get("permission")
    if permission is None:
        bad_request(
            "Required request parameter 'permission' for method parameter type StsPermission is "
            "not present"
        )
    if permission not in POLICY_ACTIONS:
        bad_request(
            "Failed to convert value of type 'java.lang.String' to required type "
            "'org.sagebionetworks.repo.model.sts.StsPermission'; No enum constant "
            f"org.sagebionetworks.repo.model.sts.StsPermission.{permission}"
        )
    node_id = parse_syn_id(entity_id)
    nodes.require_node(store, node_id)
    setting = storage.inherited_setting(store, node_id)
    if setting is None:
        bad_request("Entity must have a project setting")
    if not storage.setting_is_sts(store, setting):
        bad_request("Entity must have an STS-enabled storage location")
    location = storage.require_location(store, storage.setting_locations(setting)[0])
    if permission == "read_write" and location["concreteType"] == storage.S3_SETTING:
        bad_request("STS write access is not allowed in Synapse storage")
    needed = (
        ["DOWNLOAD"] if permission == "read_only" else ["DOWNLOAD", "UPDATE", "CREATE", "DELETE"]
    )
    for access in needed:
        nodes.check(store, caller, node_id, access)
    bucket = storage.location_bucket(ctx.emulator, location)
    assert bucket is not None
    base_key = location.get("baseKey")
    policy = session_policy(bucket, base_key, str(permission))
    try:
        issued = _sts(ctx.emulator).assume_role(
            RoleArn=ROLE_ARN,
            RoleSessionName=f"sts-{caller.id}-{syn(node_id)}"[:64],
            DurationSeconds=DURATION_SECONDS,
            Policy=json.dumps(policy),
        )["Credentials"]
    except (ClientError, BotoCoreError) as exc:
        raise storage.storage_failure(exc) from exc
    expiration: datetime = issued["Expiration"]
    expires_at = expiration.astimezone(UTC).timestamp()
    grant = s3gate.Grant(
        secret=str(issued["SecretAccessKey"]),
        token=str(issued["SessionToken"]),
        expires_at=expires_at,
        bucket=bucket,
        base_key=base_key,
        permission=str(permission),
    )
    store.execute(
        "INSERT OR REPLACE INTO sts_credentials(access_key_id, secret_access_key, session_token, "
        "expires_at, bucket, base_key, permission, user_id, entity_id) VALUES (?,?,?,?,?,?,?,?,?)",
        (
            issued["AccessKeyId"],
            grant.secret,
            grant.token,
            expires_at,
            bucket,
            base_key,
            grant.permission,
            caller.id,
            node_id,
        ),
    )
    gateway = s3gate.ensure_gateway(ctx.emulator)
    if gateway is not None:
        gateway.grant(str(issued["AccessKeyId"]), grant)
    return {
        "bucket": bucket,
        "baseKey": base_key,
        "accessKeyId": issued["AccessKeyId"],
        "secretAccessKey": grant.secret,
        "sessionToken": grant.token,
        "expiration": format_time(expiration),
    }


ROUTES = s3gate.guarded([Route("GET", "/repo/v1/entity/<entity_id>/sts", get_credentials)])
