"""Argument policies for kubectl, container runtimes, helm, falcoctl and the AWS CLI."""

from __future__ import annotations

from falco_reporter.validation.result import names
from falco_reporter.validation.shell_flags import check_output
from falco_reporter.validation.shell_tools import Report, ToolCheck, has_option, option_values, positionals

# Every kubectl subcommand (kubectl 1.3x), so a typo is told apart from a forbidden one.
KUBECTL_SUBCOMMANDS = frozenset(
    names(
        "create expose run set explain get edit delete rollout scale autoscale certificate cluster-info "
        "top cordon uncordon drain taint describe logs attach exec port-forward proxy cp auth debug "
        "events diff apply patch replace wait kustomize label annotate completion alpha api-resources "
        "api-versions config plugin version options"
    )
)
KUBECTL_READ_ONLY = frozenset(
    names(
        "get describe logs explain api-resources api-versions version cluster-info top events diff wait "
        "kustomize options completion port-forward cordon uncordon label annotate"
    )
)
KUBECTL_FORBIDDEN = {
    "delete": "deletes resources (and the evidence in them)",
    "drain": "evicts every pod from the node",
    "replace": "overwrites (with --force: deletes and recreates) resources",
    "edit": "edits live objects interactively, unreviewable",
    "scale": "changes the number of running pods",
    "autoscale": "changes scaling",
    "run": "starts arbitrary pods",
    "expose": "exposes workloads",
    "attach": "attaches to a running process interactively",
    "proxy": "exposes the API server locally",
    "certificate": "approves or denies certificate requests",
    "alpha": "alpha commands",
}
KUBECTL_VALUE_FLAGS = frozenset(
    names(
        "-n --namespace --context --cluster --user --kubeconfig -s --server --as --as-group --as-uid "
        "--token --request-timeout -v --v -c --container -o --output -l --selector --field-selector -f "
        "--filename --image --since --tail --sort-by --type --profile --target --timeout"
    )
)
_DRY_RUN = ("--dry-run=server", "--dry-run=client")
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


def _kubectl(args: list[str], report: Report) -> list[list[str]]:
    before, dash, after = (
        (args[: args.index("--")], True, args[args.index("--") + 1 :]) if "--" in args else (args, False, [])
    )
    words = positionals(before, KUBECTL_VALUE_FLAGS)
    if not words:
        report("kubectl: no subcommand")
        return []
    sub, rest = words[0], words[1:]
    if sub not in KUBECTL_SUBCOMMANDS:
        report(f"kubectl {sub}: not a kubectl subcommand")
    elif sub in KUBECTL_FORBIDDEN:
        report(f"kubectl {sub}: not allowed: {KUBECTL_FORBIDDEN[sub]}")
    elif sub in ("exec", "debug"):
        if dash:
            return [after]
        if sub == "exec":
            report("kubectl exec: give the command after '--' (kubectl exec POD -- CMD)")
    elif sub in ("apply", "create", "patch", "set") and not any(a in _DRY_RUN for a in before):
        report(
            f"kubectl {sub}: only with --dry-run=server or --dry-run=client (reports never change the cluster)"
        )
    elif sub == "taint" and any(r.endswith(":NoExecute") for r in rest):
        report("kubectl taint ...:NoExecute: evicts every pod from the node")
    elif sub == "rollout" and rest[:1] not in (
        ["status"],
        ["history"],
        ["restart"],
        ["pause"],
        ["resume"],
        ["undo"],
    ):
        report(f"kubectl rollout {' '.join(rest[:1])}: not a rollout subcommand we allow")
    elif sub == "auth" and rest[:1] not in (["can-i"], ["whoami"]):
        report("kubectl auth: only can-i and whoami (reconcile writes RBAC)")
    elif sub == "config" and rest[:1] not in (
        ["view"],
        ["current-context"],
        ["get-contexts"],
        ["get-clusters"],
    ):
        report("kubectl config: only view, current-context, get-contexts, get-clusters")
    elif sub == "cp" and not (rest and ":" in rest[0]):
        report("kubectl cp: only copying out of a pod (POD:PATH first) is allowed")
    elif sub == "cp":
        check_output("kubectl cp", "DEST", rest[1:2] or [""], report)
    elif sub == "port-forward" and set(option_values(before, "--address")) - set(_LOOPBACK):
        report("kubectl port-forward --address: only localhost (anything else exposes the pod)")
    elif sub == "config" and "--raw" in before:
        report("kubectl config view --raw: prints credentials into the report")
    elif sub == "kustomize" and option_values(before, "-o", "--output"):
        check_output("kubectl kustomize", "--output", option_values(before, "-o", "--output"), report)
    elif sub == "plugin" and rest[:1] != ["list"]:
        report("kubectl plugin: only list")
    elif sub not in (
        *KUBECTL_READ_ONLY,
        *names("apply create patch set taint rollout auth config cp plugin"),
    ):
        report(f"kubectl {sub}: not allowed in reports")
    return []


def _exec_after_id(program: str, value_flags: frozenset[str], allowed: frozenset[str]) -> ToolCheck:
    """crictl/docker-style CLIs: read-only subcommands; 'exec [opts] ID CMD...' checks CMD."""

    def check(args: list[str], report: Report) -> list[list[str]]:
        words = positionals(args, value_flags)
        if not words:
            report(f"{program}: no subcommand")
            return []
        sub = words[0]
        if sub == "exec":
            tail = args[args.index("exec") + 1 :]
            rest = positionals(tail, value_flags)
            if not rest:
                report(f"{program} exec: needs a container and a command")
                return []
            return [tail[tail.index(rest[0]) + 1 :]]
        if sub not in allowed:
            report(f"{program} {sub}: not allowed (read-only subcommands: {', '.join(sorted(allowed))})")
        if program in ("docker", "podman", "nerdctl") and sub == "stats" and "--no-stream" not in args:
            report(f"{program} stats: add --no-stream")
        return []

    return check


_CRICTL = _exec_after_id(
    "crictl",
    frozenset(
        names(
            "-r --runtime-endpoint -i --image-endpoint -t --timeout -c --config --name --label --pod --state "
            "-p -o --output --tail --since --image"
        )
    ),
    frozenset(
        names("ps pods inspect inspectp inspecti images img logs stats statsp info version imagefsinfo")
    ),
)
_DOCKER_FLAGS = frozenset(
    names(
        "-f --filter --format -H --host --context -u --user -w --workdir -e --env -n --tail --since "
        "--namespace"
    )
)
_DOCKER_READ = frozenset(
    names("ps inspect logs images top diff stats version info history port events container image")
)


def _docker(program: str) -> ToolCheck:
    base = _exec_after_id(program, _DOCKER_FLAGS, _DOCKER_READ)

    def check(args: list[str], report: Report) -> list[list[str]]:
        words = positionals(args, _DOCKER_FLAGS)
        if words[:1] in (["container"], ["image"]) and words[1:2] not in (
            ["ls"],
            ["list"],
            ["inspect"],
            ["logs"],
            ["top"],
            ["diff"],
            ["port"],
            ["history"],
        ):
            report(f"{program} {' '.join(words[:2])}: only ls/inspect/logs/top/diff/port/history")
        return base(args, report)

    return check


def _ctr(args: list[str], report: Report) -> list[list[str]]:
    words = positionals(args, ("-n", "--namespace", "-a", "--address", "--timeout"))
    groups = {
        "containers": "c container",
        "tasks": "t task",
        "images": "i image",
        "namespaces": "ns namespace",
        "snapshots": "snapshot",
        "plugins": "plugin",
    }
    aliases = {alias: name for name, more in groups.items() for alias in [name, *more.split()]}
    group = aliases.get(words[0]) if words else None
    if words[:1] == ["version"]:
        return []
    if group is None or words[1:2] not in (["ls"], ["list"], ["info"], ["ps"], ["metrics"], ["check"]):
        report(
            f"ctr {' '.join(words[:2])}: only list/ls/info/ps/metrics of containers, tasks, images, namespaces"
        )
    return []


def _helm(args: list[str], report: Report) -> list[list[str]]:
    words = positionals(
        args,
        names(
            "-n --namespace --kube-context --kubeconfig -o --output --revision --version -f --values --set "
            "--repo"
        ),
    )
    sub = words[0] if words else ""
    read = names(
        "list ls status get history hist show inspect template search version env lint verify dependency dep"
    )
    check_output(
        f"helm {sub}", "--output-dir", option_values(args, "--output-dir", "-d", "--destination"), report
    )
    if sub in ("install", "upgrade"):
        if not has_option(args, "--dry-run"):
            report(f"helm {sub}: only with --dry-run (reports never change the cluster)")
    elif sub == "repo":
        if words[1:2] not in (["list"], ["ls"], ["update"], ["add"]):
            report("helm repo: only list, add, update")
    elif sub not in read:
        report(f"helm {sub}: not allowed (uninstall/rollback/delete change releases)")
    return []


def _falcoctl(args: list[str], report: Report) -> list[list[str]]:
    words = positionals(args, ("--config", "--log-level", "--log-format", "--type", "--allowed-types"))
    allowed = {
        "artifact": {"list", "info", "install", "follow", "search", "manifest", "config"},
        "index": {"list", "add", "update"},
        "driver": {"printenv", "config"},
    }
    if words[:1] == ["version"]:
        return []
    if not words or words[0] not in allowed or (len(words) > 1 and words[1] not in allowed[words[0]]):
        report(
            f"falcoctl {' '.join(words[:2])}: not allowed (artifact list/info/install, index list/add, version)"
        )
    return []


# Besides reads, the one hardening call reports recommend: require IMDSv2 (tokens) on a node.
_AWS_ALLOWED_WRITES = {("sts", "get-caller-identity"), ("ec2", "modify-instance-metadata-options")}


def _aws(args: list[str], report: Report) -> list[list[str]]:
    flags_without_value = {
        "--debug",
        "--no-paginate",
        "--no-verify-ssl",
        "--no-sign-request",
        "--no-cli-pager",
    }
    words: list[str] = []
    i = 0
    while i < len(args):
        if args[i].startswith("--"):
            i += 1 if args[i] in flags_without_value or "=" in args[i] else 2
            continue
        words.append(args[i])
        i += 1
    service, operation = [*words, "", ""][:2]
    if (service, operation) == ("ec2", "modify-instance-metadata-options"):
        joined = " ".join(args).replace("=", " ")
        if "--http-tokens required" not in joined:
            report(
                "aws ec2 modify-instance-metadata-options: only to require IMDSv2 (--http-tokens required)"
            )
        return []
    if (service, operation) in _AWS_ALLOWED_WRITES:
        return []
    if not operation.startswith(("describe-", "get-", "list-")) or operation == "get-secret-value":
        report(f"aws {service} {operation}: only read-only describe-*/get-*/list-* calls")
    return []


K8S_POLICIES: dict[str, ToolCheck] = {
    "kubectl": _kubectl,
    "crictl": _CRICTL,
    "ctr": _ctr,
    "docker": _docker("docker"),
    "podman": _docker("podman"),
    "nerdctl": _docker("nerdctl"),
    "helm": _helm,
    "falcoctl": _falcoctl,
    "aws": _aws,
}
