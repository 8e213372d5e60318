"""Property-based run of schemathesis against /api/v1/schema/ (called by .ci/run).

Starts gunicorn on a free port with a fresh SQLite database (migrated, a little demo data and a
superuser token, so every endpoint is reachable), runs schemathesis with a bounded number of
examples, and exits non-zero on any 5xx or any response that breaks its own schema.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MAX_EXAMPLES = os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "5")

SEED = """
from django.contrib.auth import get_user_model
from leads.tokens import issue_token
from leads.models import Lead, Stage, Team
User = get_user_model()
admin = User.objects.create_superuser("st-admin", "st@example.com", "st-password")
team = Team.objects.create(name="ST", territories=["US"], is_fallback=True)
for i in range(5):
    Lead.objects.create(email=f"st{i}@example.com", external_id=f"st-{i}", company="Acme",
                        country="US", stage=Stage.MQL if i % 2 else Stage.LEAD, team=team)
print(issue_token(user=admin, name='schemathesis')[1])
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    # Under the project's var/, not the system's temporary directory: CI reads only its own tree.
    (ROOT / "var").mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="schemathesis-", dir=ROOT / "var"))
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{work / 'st.sqlite3'}",
            "CELERY_BROKER_URL": "filesystem://",
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "DEBUG": "1",
            "API_THROTTLE_TOKEN_RATE": "1000000/hour",
            "API_THROTTLE_USER_RATE": "1000000/hour",
        }
    )
    env.pop("SQLITE_TEST_NAME", None)
    python = str(BIN / "python")
    subprocess.run([python, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    token = (
        subprocess.run(
            [python, "manage.py", "shell", "-c", SEED],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    port = free_port()
    server = subprocess.Popen(
        [str(BIN / "gunicorn"), "leadflow.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2", "--timeout", "60"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(work / "gunicorn.log", "wb"),  # noqa: SIM115 - open for the server's lifetime
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/v1/schema/", timeout=2)
                break
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline:
                    print("gunicorn did not start", file=sys.stderr)
                    return 2
                time.sleep(0.5)
        command = [
            str(BIN / "schemathesis"),
            "run",
            f"{base}/api/v1/schema/",
            "-H",
            f"Authorization: Token {token}",
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--max-examples",
            MAX_EXAMPLES,
            "--seed",
            "20261123",
            "--phases",
            "examples,coverage,fuzzing",
            "--request-timeout",
            "30",
            "--workers",
            "1",
        ]
        print("+", " ".join(command[:3]), "...", flush=True)
        return subprocess.run(command, cwd=ROOT, env=env).returncode
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    sys.exit(main())
