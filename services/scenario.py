"""The demo's scenario on the embedded servers: Pagila, a login role, its secret.

Shared by the demo and the integration tests so both exercise the same set-up.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.aws import MotoServer
from services.postgres import PostgresCluster

DATASETS = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets"
PAGILA_SCHEMA = Path(
    os.environ.get(
        "CREDFLOW_PAGILA_SCHEMA", str(DATASETS / "pagila" / "pagila-schema.sql")
    )
)

REGION = "us-east-1"
SECRET_NAME = "my-postgres-connection"
USER_KEY = "postgres_user"
PASSWORD_KEY = "postgres_password"
EXTRACTOR = "credflow_extractor"


def new_password() -> str:
    # Characters that break naive URL building, so every run proves URL.create.
    return f"p@ss:w/rd#%?&={secrets.token_urlsafe(12)}"


@dataclass
class Scenario:
    """A loaded database, a login role and the secret that holds its credentials."""

    pg: PostgresCluster
    moto: MotoServer
    database: str
    role: str
    secret_arn: str
    password: str
    region: str = REGION

    def secrets_client(self) -> Any:
        return self.moto.client("secretsmanager", region=self.region)

    def connection(self, **overrides: Any) -> dict[str, Any]:
        """A connection description (as JSON data): key names, no password."""
        description: dict[str, Any] = {
            "source": "aws-secrets-manager",
            "secret_arn": self.secret_arn,
            "region": self.region,
            "auth_type": "basic",
            "username": USER_KEY,
            "password": PASSWORD_KEY,
            "host": self.pg.host,
            "port": self.pg.port,
            "database": self.database,
        }
        description.update(overrides)
        return description

    def put_secret(self, password: str, **extra: Any) -> str:
        """Store a new secret version (AWSCURRENT); returns its version id."""
        values = {USER_KEY: self.role, PASSWORD_KEY: password, **extra}
        response = self.secrets_client().put_secret_value(
            SecretId=self.secret_arn, SecretString=json.dumps(values)
        )
        return response["VersionId"]

    def set_database_password(self, password: str) -> None:
        self.pg.set_password(self.role, password)
        self.password = password

    def rotate(self) -> str:
        """Change the password in the database, then the secret; the new version id."""
        password = new_password()
        self.set_database_password(password)
        return self.put_secret(password)

    def current_version(self) -> str:
        response = self.secrets_client().describe_secret(SecretId=self.secret_arn)
        for version, stages in response["VersionIdsToStages"].items():
            if "AWSCURRENT" in stages:
                return version
        raise LookupError("the secret has no AWSCURRENT version")


def load_pagila(pg: PostgresCluster, database: str = "pagila") -> str:
    if not PAGILA_SCHEMA.is_file():
        raise FileNotFoundError(
            f"the Pagila schema is not at {PAGILA_SCHEMA}: set CREDFLOW_PAGILA_SCHEMA "
            "to the path of pagila-schema.sql"
        )
    pg.create_database(database)
    pg.load_sql_file(PAGILA_SCHEMA, database=database)
    return database


def prepare(
    pg: PostgresCluster,
    moto: MotoServer,
    *,
    database: str = "pagila",
    role: str = EXTRACTOR,
    secret_name: str = SECRET_NAME,
    load: bool = True,
) -> Scenario:
    """Load Pagila, create the extraction role, and store its credentials."""
    if load:
        load_pagila(pg, database)
    password = new_password()
    pg.create_login_role(role, password)
    client = moto.client("secretsmanager", region=REGION)
    response = client.create_secret(
        Name=secret_name,
        SecretString=json.dumps({USER_KEY: role, PASSWORD_KEY: password}),
    )
    return Scenario(
        pg=pg,
        moto=moto,
        database=database,
        role=role,
        secret_arn=response["ARN"],
        password=password,
    )
