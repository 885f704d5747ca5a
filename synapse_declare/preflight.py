"""Checks apply makes before its first change, for what the plan cannot know.

A plan does not know the options of the apply that will run it. ``--verify md5`` (the default)
and ``--verify size`` read every copied object back from the destination bucket with *this
machine's* AWS credentials; without read access there, every file would be copied and then fail
verification. So apply checks, once per destination, that it can read the bucket's
``owner.txt`` (which Synapse requires to exist in an ``external_s3`` location) before it changes
anything, and refuses with the way out.
"""

from __future__ import annotations

from .client.s3 import make_s3_client, owner_txt_key
from .errors import ConfigError, PolicyViolation
from .model import Manifest
from .plan import Action, Plan, Resource


def check_verify_access(plan: Plan, manifest: Manifest, verify: str) -> None:
    """Raise :class:`PolicyViolation` when ``verify`` needs to read a migration destination that
    this machine cannot read."""
    if verify == "none":
        return
    destinations = {
        str(change.desired.get("destination"))
        for change in plan.changes
        if change.resource is Resource.MIGRATION and change.action is Action.MIGRATE
    }
    for name in sorted(destinations):
        spec = manifest.storage_locations.get(name)
        if spec is None or spec.type != "external_s3" or spec.bucket is None:
            continue  # Synapse's own storage is verified through Synapse, not read here
        problem = read_problem(spec.bucket, spec.base_key, spec.endpoint_url)
        if problem is not None:
            raise PolicyViolation(
                f"--verify {verify} reads every copy back from s3://{spec.bucket} with this "
                f"machine's AWS credentials, and they cannot read it ({problem}); nothing was "
                "changed",
                location=spec.location,
                hint="give these credentials read access to the bucket (AWS_PROFILE, "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), or choose --verify none to rely on "
                "Synapse's own checks",
            )


def read_problem(bucket: str, base_key: str | None, endpoint_url: str | None) -> str | None:
    """Why this machine cannot read the location's bucket (HEAD of its owner.txt), or None."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    key = owner_txt_key(base_key)
    try:
        client = make_s3_client(endpoint_url)
        client.head_object(Bucket=bucket, Key=key)
    except NoCredentialsError:
        return "no AWS credentials found"
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", "")) or "error"
        return f"HEAD s3://{bucket}/{key}: {code}"
    except (BotoCoreError, ConfigError) as exc:
        return type(exc).__name__
    return None
