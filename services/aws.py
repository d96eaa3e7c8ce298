"""moto's server mode in a child process: Secrets Manager, STS and IAM on loopback."""

import importlib.util
import json
import logging
import math
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import boto3

from services._process import (
    GroupProcess,
    ManagedService,
    clean_env,
    lost_port_race,
    stop_at_exit,
    wait_until_ready,
)
from services.errors import (
    ServiceCommandError,
    ServiceError,
    ServiceNotInstalledError,
    ServiceStartError,
)
from services.ports import LOOPBACK, free_port

logger = logging.getLogger(__name__)

DUMMY_ACCESS_KEY_ID = "testing"
DUMMY_SECRET_ACCESS_KEY = "testing"
DEFAULT_REGION = "us-east-1"
_PORT_ATTEMPTS = 3

# Requests to the server itself go straight to loopback, whatever proxy the
# environment names.
_direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class MotoServer(ManagedService):
    """moto's server mode on 127.0.0.1 and a free port, run as a child process.

    Args:
        enforce_iam: check every request against IAM from the first one on, as
            AWS does (moto's INITIAL_NO_AUTH_ACTION_COUNT=0). Requests then need
            keys of an IAM user created in moto; see reset_auth() to create one.
        startup_timeout: seconds to wait for the server to answer.
    """

    host = LOOPBACK

    def __init__(self, *, enforce_iam: bool = False, startup_timeout: float = 30.0):
        self.enforce_iam = enforce_iam
        self.startup_timeout = startup_timeout
        self.port = 0
        self.base_dir: Path | None = None
        self._process: GroupProcess | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # Lifecycle.

    def start(self) -> Self:
        if self._process is not None:
            return self
        if importlib.util.find_spec("moto.server") is None:
            raise ServiceNotInstalledError(
                f"moto's server mode is not installed for {sys.executable}; "
                "install the demo extra (pip install -e '.[demo]'), which brings "
                "moto[server]"
            )
        started_at = time.monotonic()
        stop_at_exit(self)
        try:
            self.base_dir = Path(tempfile.mkdtemp(prefix="credflow-moto-"))
            self._start_server()
        except BaseException:
            self.stop()
            raise
        logger.info(
            "moto ready at %s in %.1f s",
            self.endpoint_url,
            time.monotonic() - started_at,
        )
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        try:
            if process is not None:
                process.stop(grace=5.0)
        finally:
            self._discard_folder()

    def _start_server(self) -> None:
        assert self.base_dir is not None
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            self.port = free_port()
            env = _without_aws(clean_env())
            env.update(
                AWS_ACCESS_KEY_ID=DUMMY_ACCESS_KEY_ID,
                AWS_SECRET_ACCESS_KEY=DUMMY_SECRET_ACCESS_KEY,
                AWS_DEFAULT_REGION=DEFAULT_REGION,
                AWS_EC2_METADATA_DISABLED="true",
            )
            env.pop("INITIAL_NO_AUTH_ACTION_COUNT", None)
            if self.enforce_iam:
                env["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
            argv = [sys.executable, "-m", "moto.server"]
            self._process = GroupProcess(
                [*argv, "--host", self.host, "--port", str(self.port)],
                name="moto",
                log_path=self.base_dir / "moto.log",
                env=env,
                cwd=self.base_dir,
            )
            try:
                wait_until_ready(
                    self._answers,
                    process=self._process,
                    timeout=self.startup_timeout,
                    what=f"moto on {self.endpoint_url}",
                )
                return
            except ServiceStartError as exc:
                process, self._process = self._process, None
                process.stop(grace=2.0)
                if attempt == _PORT_ATTEMPTS or not lost_port_race(exc):
                    raise

    def _answers(self) -> bool:
        try:
            with _direct.open(self.endpoint_url + "/moto-api/", timeout=1) as answer:
                return answer.status == 200
        except (OSError, urllib.error.URLError):
            return False

    # Pointing boto3 at the server.

    def env(self) -> dict[str, str]:
        """Variables that aim boto3 in a child process at this server.

        Overlay them on a copy of the environment; child_env() does that and also
        drops every other AWS_* variable, which is safer.
        """
        self._require_started()
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": DUMMY_ACCESS_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET_ACCESS_KEY,
            "AWS_DEFAULT_REGION": DEFAULT_REGION,
            # Nothing may ever try the instance metadata address.
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def child_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """A full environment for a child process, aimed at this server.

        Starts from `base` (this process's environment without proxy settings by
        default) and drops every AWS_* variable before adding env()'s: an
        inherited service endpoint (AWS_ENDPOINT_URL_SECRETS_MANAGER), profile or
        session token would otherwise outrank them.
        """
        env = _without_aws(clean_env() if base is None else base)
        env.update(self.env())
        return env

    def client(self, service: str, region: str = DEFAULT_REGION, **kw: Any) -> Any:
        """A boto3 client for `service` aimed at this server with dummy keys.

        Keyword arguments go to `boto3.Session.client`; pass aws_access_key_id and
        aws_secret_access_key to act as an IAM user created in moto.
        """
        self._require_started()
        session = boto3.session.Session(
            aws_access_key_id=DUMMY_ACCESS_KEY_ID,
            aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
            region_name=region,
        )
        return session.client(service, endpoint_url=self.endpoint_url, **kw)

    # moto's own controls.

    def reset(self) -> None:
        """Forget every resource in every service (secrets, users, policies)."""
        self._post("/moto-api/reset", b"")

    def reset_auth(self, initial_no_auth_action_count: float) -> float:
        """Let the next N requests skip IAM checks; return the previous N.

        0 enforces IAM at once; math.inf turns checking off. The usual pattern for
        IAM tests: reset_auth(math.inf), create users, policies and keys with
        dummy credentials, then reset_auth(0).
        """
        count = (
            "inf"
            if math.isinf(initial_no_auth_action_count)
            else str(int(initial_no_auth_action_count))
        )
        answer = self._post("/moto-api/reset-auth", count.encode("ascii"))
        return float(json.loads(answer)["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"])

    def _post(self, path: str, body: bytes) -> bytes:
        self._require_started()
        request = urllib.request.Request(
            self.endpoint_url + path,
            data=body,
            method="POST",
            # Without it urllib says form data, and werkzeug then hands moto an
            # empty body.
            headers={"Content-Type": "text/plain"},
        )
        try:
            with _direct.open(request, timeout=10) as answer:
                return bytes(answer.read())
        except OSError as exc:
            raise ServiceCommandError(
                f"moto at {self.endpoint_url} did not accept POST {path}: {exc}"
            ) from exc

    def _require_started(self) -> None:
        if self._process is None:
            raise ServiceError("moto is not started; call start()")

    def log_tail(self) -> str:
        return self._process.log_tail() if self._process is not None else ""

    def __repr__(self) -> str:
        return (
            f"MotoServer(endpoint_url={self.endpoint_url!r}, "
            f"enforce_iam={self.enforce_iam!r}, running={self.running!r})"
        )


def _without_aws(env: Mapping[str, str]) -> dict[str, str]:
    return {key: value for key, value in env.items() if not key.startswith("AWS_")}
