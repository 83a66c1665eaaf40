"""A corpus of secret forms: none survives into the stored alert spec, the rendered report or the LLM prompt.

Every value below is made up for this test (FAKE in most of them); none is a real credential.
The forms were collected from the tools' manuals and from the kinds of rule that gitleaks and
detect-secrets maintain; the regexes that find them are ours (reporting/secret_rules.py).
"""

from __future__ import annotations

import json
import time
from typing import Any, NamedTuple

import pytest

from falco_reporter.knowledge.base import KnowledgeBase, load
from falco_reporter.models.enrichment import Enrichment
from falco_reporter.models.falco import normalise, parse_alert_body
from falco_reporter.models.report import Occurrences
from falco_reporter.offline import render_alert
from falco_reporter.reporting.chain import LLMWriter
from falco_reporter.reporting.redaction import PLACEHOLDER_RE, redact, redact_alert, redacted_fields
from falco_reporter.reporting.secret_rules import RULES, SEGMENT_RULES
from falco_reporter.reporting.service import ReportService
from tests.samples import REAL_DIR
from tests.test_chain import SHELL_SAMPLE, ToolCallingFake, config, good_answer, prompt_text, tool_reply

ALNUM = "FAKE0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
HEX64 = ("0123456789abcdef" * 4)[::-1]


def fake(prefix: str, n: int, alphabet: str = ALNUM) -> str:
    """``prefix`` followed by ``n`` characters of a fake, recognisably made-up token."""
    body = (alphabet * (n // len(alphabet) + 1))[:n]
    return prefix + body


class Case(NamedTuple):
    id: str
    text: str
    secrets: tuple[str, ...]
    kind: str
    field: str = "proc.cmdline"


def case(id: str, text: str, secret: str | tuple[str, ...], kind: str, field: str = "proc.cmdline") -> Any:
    secrets = (secret,) if isinstance(secret, str) else secret
    return pytest.param(Case(id, text, secrets, kind, field), id=id)


GOOGLE_KEY = fake("AIza", 35)
SLACK_HOOK = "T0FAKE0001/B0FAKE0002/FAKEfakeFAKEfakeFAKEfake"
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAfakeFAKEfakeFAKE0123\nQk9sLmNoPqRsTuVwXyZa0123456789+/==\n"
    "-----END RSA PRIVATE KEY-----"
)
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJGQUtFLXVzZXIifQ.FAKEsignatureFAKEsignature0123456789ab"

CORPUS = [
    # --- the forms issue 14 found leaking -------------------------------------------------------
    case(
        "docker-login-p",
        "docker login -u ci -p D0ckerFakePw registry.example.com",
        "D0ckerFakePw",
        "password-flag",
    ),
    case(
        "podman-login-p-attached",
        "podman login --username ci -pP0dmanFakePw quay.io",
        "P0dmanFakePw",
        "password-flag",
    ),
    case(
        "az-login-p",
        "az login --service-principal -u 11111111-app -p Az.FakeSecret~1 --tenant contoso",
        "Az.FakeSecret~1",
        "password-flag",
    ),
    case(
        "oc-login-p",
        "oc login -u developer -p 0cFakePassw0rd https://api.crc.testing:6443",
        "0cFakePassw0rd",
        "password-flag",
    ),
    case(
        "helm-registry-login-p",
        "helm registry login registry.example.com -u bob -p H3lmFakeRegPw",
        "H3lmFakeRegPw",
        "password-flag",
    ),
    case(
        "cf-login-p",
        "cf login -a https://api.cf.example -u admin -p CfFakeAdm1nPw",
        "CfFakeAdm1nPw",
        "password-flag",
    ),
    case(
        "sqlcmd-P",
        "sqlcmd -S db.shop -U sa -P 'Sql5erver!FakePw' -Q 'select 1'",
        "Sql5erver!FakePw",
        "password-flag",
    ),
    case(
        "mongosh-p",
        "mongosh mongodb://db:27017/shop -u admin -p M0ngoFakePassw0rd",
        "M0ngoFakePassw0rd",
        "password-flag",
    ),
    case(
        "mongodump-p",
        "mongodump --host db -u backup -p M0ngoFakeDump99 --out /tmp/d",
        "M0ngoFakeDump99",
        "password-flag",
    ),
    case(
        "htpasswd-b",
        "htpasswd -b /etc/nginx/.htpasswd admin Htp4sswdFakePw",
        "Htp4sswdFakePw",
        "password-flag",
    ),
    case("htpasswd-nb", "htpasswd -nb admin Htp4sswdFakePw2", "Htp4sswdFakePw2", "password-flag"),
    case(
        "chpasswd", "sh -c \"echo 'root:Chp4sswdFakeRoot' | chpasswd\"", "Chp4sswdFakeRoot", "stdin-password"
    ),
    case(
        "sudo-chpasswd",
        "bash -c 'echo \"deploy:Chp4ssFakeDeploy\" | sudo chpasswd'",
        "Chp4ssFakeDeploy",
        "stdin-password",
    ),
    case(
        "password-stdin-echo",
        "sh -c 'echo R3gistryFakeT0ken | docker login -u ci --password-stdin registry.example.com'",
        "R3gistryFakeT0ken",
        "stdin-password",
    ),
    case(
        "password-stdin-printf",
        "sh -c \"printf '%s' 'Pr1ntfFakeSecret' | podman login -u ci --password-stdin quay.io\"",
        "Pr1ntfFakeSecret",
        "stdin-password",
    ),
    case(
        "passwd-stdin",
        "sh -c 'echo S3cretFakeP4ss | passwd --stdin appuser'",
        "S3cretFakeP4ss",
        "stdin-password",
    ),
    case(
        "sudo-S",
        "sh -c 'echo Sud0FakePassw0rd | sudo -S apt-get update'",
        "Sud0FakePassw0rd",
        "stdin-password",
    ),
    case(
        "openssl-k",
        "openssl enc -aes-256-cbc -k 0pensslFakeEncPw -in a.txt -out a.enc",
        "0pensslFakeEncPw",
        "password-flag",
    ),
    case(
        "openssl-passin",
        "openssl pkcs12 -in c.p12 -passin pass:P12FakePassw0rd -nodes",
        "P12FakePassw0rd",
        "openssl-pass",
    ),
    case(
        "openssl-passout",
        "openssl req -x509 -newkey rsa:2048 -keyout k.pem -passout pass:ReqFakePassOut9 -days 1",
        "ReqFakePassOut9",
        "openssl-pass",
    ),
    case(
        "mysql-p-quoted-two-words",
        "mysql -u root -p'two fake words' shop",
        ("two fake words", "fake words"),
        "password-flag",
    ),
    case(
        "mysql-p-double-quoted",
        'mysql -uroot -p"Quoted Fake Pw 42" -h db',
        ("Quoted Fake Pw 42", "Pw 42"),
        "password-flag",
    ),
    case(
        "x-api-key-header",
        "curl -H 'X-API-Key: 9a8bFAKE6d5e4f3a2b1c0d' https://api.example.com/v1",
        "9a8bFAKE6d5e4f3a2b1c0d",
        "api-key-header",
    ),
    case(
        "api-key-header",
        'curl -H "api-key: AzOpenAIFakeKey0123456789" https://x.openai.azure.com/openai',
        "AzOpenAIFakeKey0123456789",
        "api-key-header",
    ),
    case(
        "x-auth-token-header",
        "curl -H 'X-Auth-Token: 0penstackFakeT0kenABC' https://keystone:5000/v3/projects",
        "0penstackFakeT0kenABC",
        "api-key-header",
    ),
    case(
        "x-vault-token-header",
        "curl -H 'X-Vault-Token: VaultHdrFakeT0ken123' https://vault:8200/v1/secret/app",
        "VaultHdrFakeT0ken123",
        "api-key-header",
    ),
    case(
        "gitlab-private-token-header",
        'curl --header "PRIVATE-TOKEN: Pr1vateFakeT0kenValue" https://gitlab.example.com/api/v4/projects',
        "Pr1vateFakeT0kenValue",
        "api-key-header",
    ),
    case("openai-sk", f"python3 chat.py --model gpt {fake('sk-', 40)}", fake("sk-", 40), "openai-api-key"),
    case(
        "openai-sk-proj",
        f"llm keys set openai {fake('sk-proj-', 48)}",
        fake("sk-proj-", 48),
        "openai-api-key",
    ),
    case(
        "anthropic-sk-ant",
        f"node bot.js {fake('sk-ant-api03-', 60)}",
        fake("sk-ant-api03-", 60),
        "anthropic-api-key",
    ),
    case("stripe-sk-live", f"node charge.js {fake('sk_live_', 24)}", fake("sk_live_", 24), "stripe-key"),
    case(
        "stripe-webhook-secret",
        f"stripe listen --forward-to :3000 {fake('whsec_', 32)}",
        fake("whsec_", 32),
        "stripe-key",
    ),
    case(
        "google-api-key",
        f"curl https://maps.googleapis.com/maps/api/geocode/json?key={GOOGLE_KEY}",
        GOOGLE_KEY,
        "google-api-key",
    ),
    case(
        "slack-webhook",
        f'curl -X POST -d \'{{"text":"deployed"}}\' https://hooks.slack.com/services/{SLACK_HOOK}',
        ("FAKEfakeFAKEfakeFAKEfake", SLACK_HOOK),
        "slack-webhook",
    ),
    case(
        "vault-s-token",
        "vault token lookup s.FAKE1234567890abcdefghij",
        "s.FAKE1234567890abcdefghij",
        "vault-token",
    ),
    case(
        "vault-hvs-token",
        f"vault kv get -address https://vault:8200 {fake('hvs.', 40)}",
        fake("hvs.", 40),
        "vault-token",
    ),
    case(
        "npm-authtoken",
        "npm config set //registry.npmjs.org/:_authToken=NpmAuthFakeT0ken123",
        "NpmAuthFakeT0ken123",
        "npm-token",
    ),
    case(
        "npm-token-prefix",
        f"npm whoami --registry https://r.example {fake('npm_', 36)}",
        fake("npm_", 36),
        "npm-token",
    ),
    # --- cloud providers ------------------------------------------------------------------------
    case(
        "aws-access-key-id",
        "env AWS_ACCESS_KEY_ID=AKIAFAKEFAKEFAKE2345 aws s3 ls",
        "AKIAFAKEFAKEFAKE2345",
        "aws-access-key-id",
    ),
    case(
        "aws-secret-access-key",
        "AWS_SECRET_ACCESS_KEY=FAKEfakeFAKEfake/FAKEfakeFAKEfake+FAKEfa aws s3 ls",
        "FAKEfakeFAKEfake/FAKEfakeFAKEfake+FAKEfa",
        "aws-secret-access-key",
    ),
    case(
        "aws-session-token",
        f"aws configure set aws_session_token {fake('IQoJb3JpZ2luX2Vj', 60)}",
        fake("IQoJb3JpZ2luX2Vj", 60),
        "aws-session-token",
    ),
    case(
        "azure-storage-connection-string",
        'az storage blob list -c logs --connection-string "DefaultEndpointsProtocol=https;AccountName=shopdata;'
        'AccountKey=FAKEbase64Key0123456789+/abcFAKE==;EndpointSuffix=core.windows.net"',
        "FAKEbase64Key0123456789+/abcFAKE==",
        "connection-string",
    ),
    case(
        "azure-service-bus-connection-string",
        "dotnet worker.dll Endpoint=sb://shop.servicebus.windows.net/;SharedAccessKeyName=Root;"
        "SharedAccessKey=FAKEsbKey0123456789abc=",
        "FAKEsbKey0123456789abc=",
        "connection-string",
    ),
    case(
        "sqlserver-connection-string",
        "dotnet api.dll 'Server=tcp:db,1433;Database=shop;User Id=sa;Password=SqlFakeC0nnPw!;'",
        "SqlFakeC0nnPw!",
        "secret-assignment",
    ),
    case("odbc-pwd", 'isql -k "DSN=shop;Uid=sa;Pwd=0dbcFakePw77"', "0dbcFakePw77", "connection-string"),
    case(
        "azure-sas-url",
        "azcopy copy f.tgz 'https://acct.blob.core.windows.net/c/f.tgz?sv=2022-11-02&ss=b&sig=FAKEsig0123456789%3D'",
        "FAKEsig0123456789%3D",
        "signed-url",
    ),
    case(
        "s3-presigned-url",
        f"curl -O 'https://b.s3.amazonaws.com/f?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature={HEX64}'",
        HEX64,
        "signed-url",
    ),
    case(
        "gcp-service-account-json",
        'echo \'{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvFAKEfakeFAKE0123\\n-----END'
        " PRIVATE KEY-----\\n\"}' > /tmp/sa.json",
        "MIIEvFAKEfakeFAKE0123",
        "gcp-private-key",
    ),
    case(
        "google-oauth-token",
        f"gcloud storage ls --access-token-file x {fake('ya29.', 40)}",
        fake("ya29.", 40),
        "google-oauth-token",
    ),
    case(
        "google-client-secret",
        f"oauth2l fetch {fake('GOCSPX-', 28)}",
        fake("GOCSPX-", 28),
        "google-client-secret",
    ),
    case(
        "azure-client-secret",
        "terraform apply abc8Q~FAKE_0123456789abcdefghijklmnopq",
        "abc8Q~FAKE_0123456789abcdefghijklmnopq",
        "azure-client-secret",
    ),
    case(
        "digitalocean-token",
        f"doctl auth init -t {fake('dop_v1_', 64, HEX64)}",
        fake("dop_v1_", 64, HEX64),
        "digitalocean-token",
    ),
    case(
        "alibaba-access-key-id",
        "aliyun configure --profile p LTAI5tFAKE0123456789ab",
        "LTAI5tFAKE0123456789ab",
        "alibaba-access-key-id",
    ),
    # --- version control, registries, package indexes -------------------------------------------
    case(
        "github-ghp", f"git push https://github.com/o/r {fake('ghp_', 36)}", fake("ghp_", 36), "github-token"
    ),
    case("github-gho", f"gh api user {fake('gho_', 36)}", fake("gho_", 36), "github-token"),
    case(
        "github-fine-grained", f"export GH={fake('github_pat_', 60)}", fake("github_pat_", 60), "github-token"
    ),
    case("gitlab-glpat", f"glab auth login {fake('glpat-', 20)}", fake("glpat-", 20), "gitlab-token"),
    case(
        "gitlab-runner-glrt", f"gitlab-runner register {fake('glrt-', 24)}", fake("glrt-", 24), "gitlab-token"
    ),
    case("atlassian-token", f"acli login {fake('ATATT3', 60)}", fake("ATATT3", 60), "atlassian-token"),
    case(
        "docker-hub-pat", f"hub-tool login {fake('dckr_pat_', 27)}", fake("dckr_pat_", 27), "docker-hub-token"
    ),
    case(
        "pypi-token",
        f"twine upload dist/* {fake('pypi-AgEIcHlwaS5vcmc', 60)}",
        fake("pypi-AgEIcHlwaS5vcmc", 60),
        "pypi-token",
    ),
    case(
        "huggingface-token", f"huggingface-cli login {fake('hf_', 34)}", fake("hf_", 34), "huggingface-token"
    ),
    case(
        "git-clone-url-credentials",
        "git clone https://deploy:GitFakeT0kenValue99@git.example.com/app.git",
        "GitFakeT0kenValue99",
        "url-credentials",
    ),
    case(
        "docker-config-auth",
        'echo \'{"auths": {"registry.example.com": {"auth": "ZmFrZXVzZXI6ZmFrZXBhc3N3b3Jk"}}}\' > config.json',
        "ZmFrZXVzZXI6ZmFrZXBhc3N3b3Jk",
        "docker-auth",
    ),
    case(
        "kubectl-docker-registry-secret",
        "kubectl create secret docker-registry reg --docker-username=ci --docker-password=RegFakePw55",
        "RegFakePw55",
        "secret-flag",
    ),
    # --- databases ------------------------------------------------------------------------------
    case(
        "postgres-url",
        "psql postgres://app:PgFakeSup3rS3cret@db:5432/app",
        "PgFakeSup3rS3cret",
        "url-credentials",
    ),
    case(
        "mongodb-srv-url",
        "mongosh 'mongodb+srv://shop:M0ngoSrvFakePw@cluster0.example.net/shop'",
        "M0ngoSrvFakePw",
        "url-credentials",
    ),
    case(
        "redis-url-empty-user",
        "redis-cli -u redis://:R3disFakeUrlPw@cache:6379/0 ping",
        "R3disFakeUrlPw",
        "url-credentials",
    ),
    case(
        "amqp-url",
        "celery -A app worker -b amqp://guest:AmqpFakePw12@rabbit:5672//",
        "AmqpFakePw12",
        "url-credentials",
    ),
    case("mysql-password-flag", "mysql --password=MyFakeSqlPw9 -h db shop", "MyFakeSqlPw9", "secret-flag"),
    case("mysql-p-attached", "mysql -u root -pMyFakeAttachedPw shop", "MyFakeAttachedPw", "password-flag"),
    case("pgpassword-env", "PGPASSWORD=PgFakeEnvPw7 pg_dump -h db shop", "PgFakeEnvPw7", "secret-assignment"),
    case("redis-cli-a", "redis-cli -h cache -a R3disFakeCliPw ping", "R3disFakeCliPw", "password-flag"),
    case("cqlsh-p", "cqlsh cassandra 9042 -u cassandra -p CqlFakePw42", "CqlFakePw42", "password-flag"),
    case(
        "ldapsearch-w",
        "ldapsearch -x -D cn=admin,dc=ex -w LdapFakeBindPw -b dc=ex",
        "LdapFakeBindPw",
        "password-flag",
    ),
    case(
        "sqlplus-user-slash-password",
        "sqlplus -s scott/T1gerFakePw@orcl @report.sql",
        "T1gerFakePw",
        "password-flag",
    ),
    case("rabbitmqctl-add-user", "rabbitmqctl add_user ops RabbitFakePw1", "RabbitFakePw1", "password-flag"),
    case(
        "jdbc-password-param",
        "java -jar app.jar jdbc:postgresql://db/shop?user=app&password=JdbcFakePw3",
        "JdbcFakePw3",
        "secret-assignment",
    ),
    case(
        "mc-alias-set",
        "mc alias set minio http://minio:9000 ACCESSFAKE SecretFakeMinio9",
        "SecretFakeMinio9",
        "password-flag",
    ),
    # --- HTTP credentials -----------------------------------------------------------------------
    case("curl-u", "curl -u admin:CurlFakePw77 https://api.internal/v1", "CurlFakePw77", "password-flag"),
    case(
        "authorization-basic",
        "wget --header='Authorization: Basic ZmFrZXVzZXI6ZmFrZXB3' http://h/",
        "ZmFrZXVzZXI6ZmFrZXB3",
        "authorization-header",
    ),
    case(
        "authorization-bearer",
        "curl -H 'Authorization: Bearer FAKEbearer9f8e7d6c5b4a' https://api",
        "FAKEbearer9f8e7d6c5b4a",
        "authorization-header",
    ),
    case(
        "wget-http-password",
        "wget --http-user=ci --http-password=WgetFakePw1 https://h/f",
        "WgetFakePw1",
        "secret-flag",
    ),
    case(
        "httpie-a",
        "http -a admin:HttpieFakePw4 GET https://api.internal/users",
        "HttpieFakePw4",
        "password-flag",
    ),
    case(
        "cookie-header",
        "curl -H 'Cookie: session=FAKEsess10nValue0123' https://shop.example/admin",
        "FAKEsess10nValue0123",
        "cookie-header",
    ),
    case(
        "curl-oauth2-bearer",
        "curl --oauth2-bearer FAKEoauthB3arer55 https://api",
        "FAKEoauthB3arer55",
        "secret-flag",
    ),
    case(
        "jenkins-cli-auth",
        "java -jar jenkins-cli.jar -s http://ci/ -auth admin:JenkinsFakeT0k list-jobs",
        "JenkinsFakeT0k",
        "basic-auth",
    ),
    case(
        "form-client-secret",
        "curl -d 'grant_type=client_credentials&client_secret=FormFakeS3cret' https://idp/token",
        "FormFakeS3cret",
        "secret-assignment",
    ),
    # --- keys, tokens and other tools -----------------------------------------------------------
    case("sshpass-p", "sshpass -p 'SshFakePw12' ssh -p 2222 admin@10.0.0.5", "SshFakePw12", "password-flag"),
    case(
        "pem-private-key",
        f"sh -c 'cat > /root/.ssh/id_rsa <<EOF\n{PEM}\nEOF'",
        "MIIEowIBAAKCAQEAfakeFAKEfakeFAKE0123",
        "pem-private-key",
    ),
    case("jwt", f"kubectl --token-file x get pods {JWT}", JWT, "jwt"),
    case(
        "keytool-storepass",
        "keytool -list -keystore ks.jks -storepass KeyFakeSt0re1",
        "KeyFakeSt0re1",
        "secret-flag",
    ),
    case(
        "gpg-passphrase", "gpg --batch --passphrase GpgFakePhrase8 -d f.gpg", "GpgFakePhrase8", "secret-flag"
    ),
    case("zip-P", "zip -P ZipFakePw33 -r out.zip dir", "ZipFakePw33", "password-flag"),
    case("7z-p", "7z x -p7zFakeArchivePw archive.7z", "7zFakeArchivePw", "password-flag"),
    case("smbclient-U", "smbclient //fs/share -U 'ops%SmbFakePw66' -c ls", "SmbFakePw66", "password-flag"),
    case("lftp-u", "lftp -u ops,LftpFakePw3 sftp://files.example", "LftpFakePw3", "password-flag"),
    case(
        "kubectl-from-literal",
        "kubectl create secret generic db --from-literal=password=LitFakePa55",
        "LitFakePa55",
        "secret-assignment",
    ),
    case(
        "kubeadm-join-token",
        "kubeadm join 10.0.0.1:6443 --token fake01.fakefakefake0123",
        "fake01.fakefakefake0123",
        "secret-flag",
    ),
    case(
        "kubeadm-certificate-key",
        f"kubeadm join cp:6443 --control-plane --certificate-key {HEX64}",
        HEX64,
        "secret-flag",
    ),
    case(
        "slack-bot-token",
        "post --channel ops xoxb-000000000000-0000000000000-FAKEfakeFAKE",
        "xoxb-000000000000-0000000000000-FAKEfakeFAKE",
        "slack-token",
    ),
    case(
        "discord-webhook",
        f"curl -d @msg.json https://discord.com/api/webhooks/123456789012345678/{fake('', 60)}",
        fake("", 60),
        "discord-webhook",
    ),
    case(
        "sendgrid-key",
        f"node mail.js SG.{fake('', 22)}.{fake('', 43)}",
        f"SG.{fake('', 22)}.{fake('', 43)}",
        "sendgrid-key",
    ),
    case(
        "shopify-token",
        f"shopify app deploy {fake('shpat_', 32, HEX64)}",
        fake("shpat_", 32, HEX64),
        "shopify-token",
    ),
    case(
        "telegram-bot-token",
        f"curl https://api.telegram.org/bot123456789:AA{fake('', 33)}/getMe",
        f"123456789:AA{fake('', 33)}",
        "telegram-bot-token",
    ),
    case(
        "age-secret-key",
        f"age -d -i /dev/stdin f.age AGE-SECRET-KEY-1{fake('', 58, 'FAKE0123456789QWERTYUP')}",
        fake("", 58, "FAKE0123456789QWERTYUP"),
        "age-secret-key",
    ),
    # --- secrets in other fields than the command line ------------------------------------------
    case(
        "env-api-token",
        "API_TOKEN=EnvFakeT0ken42 HOME=/root",
        "EnvFakeT0ken42",
        "secret-assignment",
        "proc.env",
    ),
    case(
        "parent-cmdline-mysql",
        "mysql -u root -pParentFakePw shop",
        "ParentFakePw",
        "password-flag",
        "proc.pcmdline",
    ),
    case(
        "env-aws-secret",
        "AWS_SECRET_ACCESS_KEY=FAKEfakeFAKEfake/ENVfakeFAKEfake+FAKEfak PATH=/usr/bin",
        "FAKEfakeFAKEfake/ENVfakeFAKEfake+FAKEfak",
        "aws-secret-access-key",
        "proc.env",
    ),
]

ORDINARY = [
    "-p 8080",
    "ssh -p 22 user@host",
    "kubectl -n prod get pods",
    "kubectl logs -f deploy/web -n shop --since=1h",
    "docker run -p 8080:80 -u 1000 nginx:1.27",
    "podman run -d -p 5432:5432 postgres:16",
    "docker login registry.example.com -u bob",
    "docker login --password-stdin registry.example.com",
    "sh -c 'echo $TOKEN | docker login -u ci --password-stdin registry.example.com'",
    "sh -c 'echo \"$PW\" | passwd --stdin app'",
    "echo hello | sha256sum",
    "unzip -p archive.zip file.txt",
    "zip -r out.zip dir",
    "7z x archive.7z -o/tmp/out",
    "openssl s_client -connect api.example.com:443 -servername api.example.com",
    "openssl x509 -in cert.pem -noout -text",
    "openssl req -new -newkey rsa:2048 -nodes -keyout k.pem -out r.csr",
    "htpasswd -c /etc/nginx/.htpasswd admin",
    "mongosh --host db --port 27017",
    "sqlcmd -S server -d shop -Q 'select 1'",
    "ldapsearch -x -H ldap://ldap -b dc=example,dc=com",
    "mysql -h db -P 3306 -u app shop",
    "oc get pods -n openshift-monitoring",
    "az vm list -o table",
    "grep -r api-key: config/",
    "curl -s https://falco.org/docs/",
    "curl -sSL -o /tmp/x https://example.com/file -u",
    "curl -a ftp://files.example.com/upload/log.txt -T log.txt",
    "wget -a /var/log/wget.log https://example.com/file",
    "nc -zv db 5432",
    "python3 -c 'import os; print(os.environ)'",
    "cat /proc/self/status",
    "ps -p 1234 -o pid,cmd",
    "find / -name '*.key' -newer /tmp/x",
    "env PWD=/root HOME=/root SHLVL=1",
    "git log -p -n 3 --stat",
    "task-runner --disk-size 20G --sk-prefix none",
    "helm upgrade web ./chart -n shop --set image.tag=1.2.3",
    "redis-cli -h cache ping",
    "smbclient -L //fs -N",
    "sqlplus / as sysdba",
    "kubectl get secret db -o jsonpath='{.data.password}'",
]


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load()


def _alert_body(c: Case) -> bytes:
    """The real shell alert with the case's text in its field and in the output line, as Falco writes it."""
    payload = parse_alert_body((REAL_DIR / SHELL_SAMPLE).read_bytes())
    fields = payload["output_fields"]
    if c.field == "proc.cmdline":
        payload["output"] = payload["output"].replace(
            f"command={fields['proc.cmdline']}", f"command={c.text}"
        )
    else:
        payload["output"] += f" {c.field}={c.text}"
    fields[c.field] = c.text
    return json.dumps(payload).encode()


def test_the_corpus_is_large_and_its_ids_unique() -> None:
    """The corpus holds at least 60 secret forms and 30 ordinary command lines, each case named once."""
    ids = [p.values[0].id for p in CORPUS]
    assert len(ids) >= 60
    assert len(set(ids)) == len(ids)
    assert len(ORDINARY) >= 30


def test_every_rule_can_be_woken() -> None:
    """Each rule has at least one lower-case hint (rules run only when a hint occurs in the lower-cased text)."""
    for rule in (*RULES, *SEGMENT_RULES):
        assert rule.hints, rule
        assert all(h == h.lower() and h for h in rule.hints), rule.hints


@pytest.mark.parametrize("c", CORPUS)
def test_secret_is_redacted_from_the_stored_spec(c: Case) -> None:
    """redact_alert (what ingest stores) removes the secret from every part of the spec and names its kind and field."""
    spec = normalise(parse_alert_body(_alert_body(c)))
    assert any(s in spec.model_dump_json() for s in c.secrets)  # planted, so the check below means something
    redacted, kinds = redact_alert(spec)
    dumped = redacted.model_dump_json(by_alias=True)
    for secret in c.secrets:
        assert secret not in dumped
    assert PLACEHOLDER_RE.search(redacted.output_fields[c.field])
    assert c.kind in kinds
    assert redacted_fields(spec, redacted) == sorted([c.field, "output"])


@pytest.mark.parametrize("c", CORPUS)
def test_secret_is_absent_from_the_rendered_report(c: Case) -> None:
    """The AlertReport that render writes (spec, Markdown, subject, exception) never contains the secret."""
    report = json.dumps(render_alert(_alert_body(c), []))
    for secret in c.secrets:
        assert secret not in report
    if c.field == "proc.cmdline":  # the report shows the command line (other fields only as kinds)
        assert "[REDACTED-1]" in report
    assert c.kind in report  # writer.redactions names what was removed


@pytest.mark.parametrize("c", CORPUS)
async def test_secret_is_absent_from_the_prompt(c: Case, kb: KnowledgeBase) -> None:
    """Through ReportService and the LLM writer, the messages a model receives never contain the secret."""
    model = ToolCallingFake(responses=[tool_reply(good_answer())])
    service = ReportService(kb, LLMWriter(config(cache_size=0), kb, model=model))
    spec = normalise(parse_alert_body(_alert_body(c)))
    ctx = service.context(spec, Enrichment(), name="a", namespace="shop", occurrences=Occurrences())
    await service.write(ctx)
    sent = prompt_text(model.prompts[0])
    for secret in c.secrets:
        assert secret not in sent
    assert "[REDACTED-1]" in sent


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_command_lines_are_not_redacted(text: str) -> None:
    """Command lines without secrets (ports, namespaces, prompts for a password) come back unchanged."""
    assert redact(text) == (text, [])


@pytest.mark.parametrize(
    "piece",
    ["-----BEGIN PRIVATE KEY-----", '"private_key": "', "mysql -p", "echo a", "Authorization: ", "://a:"],
)
def test_redaction_stays_linear_on_adversarial_input(piece: str) -> None:
    """400 KB of one secret-looking fragment repeated is redacted in well under the time a quadratic scan would take."""
    text = (piece * (400_000 // len(piece) + 1))[:400_000]
    started = time.process_time()
    redact(text)
    # Linear: about 0.5 s here; the quadratic PEM scan this replaced needed over a minute.
    assert time.process_time() - started < 15.0
