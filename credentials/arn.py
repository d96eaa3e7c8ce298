"""Parse Secrets Manager ARNs and decide which region to search."""

from __future__ import annotations

import re
from dataclasses import dataclass

from credentials.errors import (
    InvalidConnectionError,
    MalformedArnError,
    RegionMismatchError,
)

_EXAMPLE = "arn:aws:secretsmanager:us-east-1:123456789012:secret:my-secret-AbCdEf"
_PARTITION = re.compile(r"^aws(-[a-z]+)*$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_ACCOUNT = re.compile(r"^\d{12}$")


@dataclass(frozen=True)
class SecretArn:
    partition: str
    region: str
    account: str
    name: str
    text: str


def parse_arn(text: str) -> SecretArn:
    """Split a full Secrets Manager ARN; say which part is wrong when it is not one."""
    parts = text.split(":", 6)
    problem = None
    if len(parts) < 7:
        problem = f"it has {len(parts)} colon-separated parts, an ARN has 7"
    elif parts[0] != "arn":
        problem = "it does not start with 'arn:'"
    elif not _PARTITION.match(parts[1]):
        problem = f"partition {parts[1]!r} is not an AWS partition"
    elif parts[2] != "secretsmanager":
        problem = f"it names service {parts[2]!r}, not 'secretsmanager'"
    elif not _REGION.match(parts[3]):
        problem = f"region {parts[3]!r} is not a region name such as 'us-east-1'"
    elif not _ACCOUNT.match(parts[4]):
        problem = f"account {parts[4]!r} is not a 12-digit AWS account id"
    elif parts[5] != "secret" or not parts[6]:
        problem = "the resource part is not 'secret:<name>'"
    if problem:
        raise MalformedArnError(
            f"the secret ARN {text!r} is malformed: {problem}. Copy the ARN from "
            f"the secret's page in the Secrets Manager console; it looks like "
            f"{_EXAMPLE}"
        )
    return SecretArn(parts[1], parts[3], parts[4], parts[6], text)


@dataclass(frozen=True)
class SecretLocation:
    """The secret id to ask for and the region to ask in, with where it came from."""

    secret_id: str
    region: str
    region_from: str
    arn: SecretArn | None


def locate(secret_arn: str | None, region: str | None) -> SecretLocation:
    secret_id = (secret_arn or "").strip()
    region = (region or "").strip() or None
    if not secret_id:
        raise InvalidConnectionError(
            "the connection description has no secret ARN: give the ARN of the "
            "secret that holds the database credentials"
        )

    if secret_id.startswith("arn:"):
        arn = parse_arn(secret_id)
        if region and region != arn.region:
            raise RegionMismatchError(
                f"the region given ({region!r}) contradicts the secret ARN, which "
                f"names region {arn.region!r}. A secret lives in one region: remove "
                f"the region or set it to {arn.region!r}"
            )
        return SecretLocation(secret_id, arn.region, "the secret ARN", arn)

    # A secret name or partial ARN: only usable with an explicit region.
    if not region:
        raise InvalidConnectionError(
            f"{secret_id!r} is a secret name, not a full ARN, and no region was "
            "given: give the full secret ARN, or the region the secret lives in"
        )
    if not _REGION.match(region):
        raise InvalidConnectionError(
            f"region {region!r} is not a region name such as 'us-east-1'"
        )
    return SecretLocation(secret_id, region, "the connection description", None)
