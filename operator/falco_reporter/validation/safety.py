"""The safety policy every mitigation passes, whoever wrote it (knowledge base or a model).

Validation proves a snippet is well formed; this policy refuses snippets that are well formed but
make the cluster less safe: they widen privilege or trust (RBAC grants to powerful roles or with
wildcards, the ``privileged`` Pod Security level, privileged or host-sharing pods, added
capabilities), switch Falco or its rules off wholesale, download and run code, or hide a
command the shell allow-list would refuse inside a ``text`` snippet. A model steered by injected
alert data can propose any of these and label it ``configuration``/``text``; so every field of
every mitigation is checked, in every language.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from falco_reporter.validation.result import ValidationResult, mask_placeholders, names
from falco_reporter.validation.shell import validate_command
from falco_reporter.validation.shell_policy import KNOWN_PROGRAMS
from falco_reporter.validation.yamlload import YamlError, load_all

SUBJECT = "safety"

#: Roles whose grant is a (near) cluster-wide or namespace-wide takeover.
POWERFUL_ROLES = frozenset({"cluster-admin", "admin", "edit"})
#: RBAC verbs that let a subject grant itself more than it has.
ESCALATING_VERBS = frozenset({"escalate", "bind", "impersonate"})
#: The only capability the restricted Pod Security level lets a container add.
ALLOWED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
#: Capabilities that amount to root on the node; never added. Others only after ``drop: [ALL]``
#: (the narrowing a "replace privileged by one capability" mitigation does).
NODE_ROOT_CAPABILITIES = frozenset(
    names(
        "ALL SYS_ADMIN SYS_MODULE SYS_PTRACE SYS_RAWIO SYS_BOOT DAC_READ_SEARCH DAC_OVERRIDE BPF PERFMON "
        "MAC_ADMIN MAC_OVERRIDE SETFCAP SYSLOG"
    )
)
#: Host paths never mounted, even read-only: the node's root, credentials, runtimes and kubelet.
SENSITIVE_HOST_PATHS = (
    "/",
    "/etc",
    "/root",
    "/home",
    "/boot",
    "/dev",
    "/run",
    "/var/run",
    "/var/lib/kubelet",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/etc/kubernetes",
)
_HOST_NAMESPACES = ("hostPID", "hostNetwork", "hostIPC")
#: Programs a text line may start with besides those the shell policy knows: seeing one means
#: the "text" is really a command, and it must pass the same policy.
_COMMON_PROGRAMS = frozenset(
    names(
        "sudo doas curl wget apt apt-get yum dnf apk zypper pip pip3 npm npx yarn gem cargo chmod chown "
        "chgrp chattr setcap systemctl iptables ip6tables nft ufw firewall-cmd mount umount python "
        "python3 perl ruby php nc ncat netcat socat telnet ssh scp sftp rsync git tar unzip gunzip sed tee "
        "echo printf touch cp ln useradd groupadd adduser addgroup visudo sysctl crontab nohup "
        "setsid env xargs base64 openssl gpg docker podman nerdctl kubectl helm crictl ctr oc az aws gcloud "
        "falcoctl falco insmod bpftool"
    )
)

_SHELL = r"(?:sudo\s+(?:-\S+\s+)*)?(?:\S*/)?(?:ba|da|z|k|a|c|tc|fi)?sh|python[\d.]*|perl|ruby|node|php|bash|iex|pwsh"
_DOWNLOAD_AND_RUN: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.IGNORECASE), why)
    for p, why in (
        (
            r"\b(?:curl|wget|fetch|invoke-webrequest|iwr|invoke-restmethod|irm)\b[^|\n]*\|\s*(?:"
            + _SHELL
            + r")\b",
            "pipes a download into an interpreter (download-and-run)",
        ),
        (
            r"\bbase64\s+(?:-\w*d\w*|--decode)\b[^|\n]*\|\s*(?:" + _SHELL + r")\b",
            "pipes decoded base64 into an interpreter",
        ),
        (
            r"(?:\$\(|`|<\()\s*(?:curl|wget)\b",
            "runs a download through command or process substitution",
        ),
        (
            r"\b(?:curl|wget)\b[^\n;&|]*(?:-o|-O|--output(?:-document)?|>)[^\n;&|]*(?:&&|;|\n)\s*"
            r"(?:sudo\s+)?(?:(?:ba|z)?sh|python[\d.]*|chmod\s+\+?[0-7]*x|\./|source\b|\.\s)",
            "downloads a file and then runs it",
        ),
    )
)
_DISABLES_FALCO: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.IGNORECASE), why)
    for p, why in (
        (
            r"\bkubectl\b[^\n|;&]*\bdelete\b[^\n|;&]*\b(?:ds|daemonsets?(?:\.apps)?)\b[^\n|;&]*falco",
            "deletes Falco's DaemonSet",
        ),
        (
            r"\bkubectl\b[^\n|;&]*\bdelete\b[^\n|;&]*\b(?:ds|daemonsets?)/\S*falco",
            "deletes Falco's DaemonSet",
        ),
        (r"\bhelm\s+(?:uninstall|delete|del|un)\b[^\n|;&]*falco", "uninstalls Falco"),
        (
            r"\b(?:systemctl\s+(?:stop|disable|mask|kill)\s+\S*falco|service\s+\S*falco\S*\s+stop)",
            "stops Falco",
        ),
        (r"\b(?:pkill|killall)\b[^\n|;&]*falco", "kills Falco"),
    )
)
#: Conditions that make a rule never fire (or an exception macro always match).
_TRIVIAL_CONDITION = re.compile(
    r"^\(*\s*(?:never_true|always_true|true|false|1\s*=\s*0|0\s*=\s*1)\s*\)*$", re.I
)
_PSS_LEVEL_LABEL = re.compile(r"^pod-security\.kubernetes\.io/enforce$")
_PROMPT = re.compile(r"^\s*(?:[$#]\s+)?")
_CODE_SPAN = re.compile(r"`([^`\n]+)`")


def check_mitigation(
    kind: str, language: str, snippet: str, *, title: str = "", description: str = ""
) -> ValidationResult:
    """Every reason this mitigation must not be offered; ok when the policy finds none."""
    errors: list[str] = []
    for name, text in (("title", title), ("description", description), ("snippet", snippet)):
        errors += [f"{name}: {why}" for why in _text_problems(text)]
    errors += _command_problems(kind, language, snippet)
    for doc in _yaml_documents(snippet):
        errors += _document_problems(doc)
    return ValidationResult.build(
        SUBJECT,
        ["no privilege or trust widening, no Falco disabling, no download-and-run, commands allow-listed"],
        list(dict.fromkeys(errors)),
        "safety policy",
    )


# --- free text ---------------------------------------------------------------------------------


def _text_problems(text: str) -> list[str]:
    return [why for pattern, why in (*_DOWNLOAD_AND_RUN, *_DISABLES_FALCO) if pattern.search(text)]


def _command_problems(kind: str, language: str, snippet: str) -> list[str]:
    """A shell snippet of any kind must pass the command policy, and so must command lines in text."""
    if not snippet.strip() or kind == "command":  # validate_snippet checks command snippets already
        return []
    if language == "shell":
        result = validate_command(snippet)
        return [f"snippet: shell command refused: {e}" for e in result.errors]
    if language != "text":
        return []
    errors: list[str] = []
    for number, line in enumerate(snippet.splitlines(), 1):
        # The line itself, and any `code span` in it ("Then run `iptables -F`.").
        for command in (_PROMPT.sub("", line, count=1).strip(), *_CODE_SPAN.findall(line)):
            if _looks_like_command(command):
                result = validate_command(command)
                errors += [
                    f"snippet line {number} is a shell command the allow-list refuses: {e}"
                    for e in result.errors
                ]
    return list(dict.fromkeys(errors))


def _looks_like_command(line: str) -> bool:
    """True when a text line starts like a shell command: a known program, or a path to one."""
    words = line.split()
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", words[0]):
        words.pop(0)  # VAR=value prefixes
    if not words:
        return False
    first = words[0]
    return first in KNOWN_PROGRAMS or first in _COMMON_PROGRAMS or first.startswith(("/", "./", "~/"))


# --- YAML: Kubernetes objects and Falco rules files ---------------------------------------------


def _yaml_documents(snippet: str) -> list[Any]:
    """The YAML documents of a snippet that parses as YAML (whatever its declared language), else none."""
    if ":" not in snippet:
        return []
    try:
        return [d for d in load_all(mask_placeholders(snippet)[0]) if isinstance(d, dict | list)]
    except (YamlError, RecursionError):
        return []


def _document_problems(doc: Any) -> list[str]:
    if isinstance(doc, list):
        return [p for item in doc if isinstance(item, dict) for p in _falco_item_problems(item)]
    if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
        return [p for item in doc["items"] if isinstance(item, dict) for p in _document_problems(item)]
    problems = _rbac_problems(doc) + _label_problems(doc) + _falco_object_problems(doc)
    problems += [p for spec in _pod_specs(doc) for p in _pod_problems(spec)]
    return problems


def _name(doc: dict[str, Any]) -> str:
    meta = doc.get("metadata")
    return f"{doc.get('kind', '?')} {meta.get('name', '?') if isinstance(meta, dict) else '?'}"


def _rbac_problems(doc: dict[str, Any]) -> list[str]:
    kind = doc.get("kind")
    problems: list[str] = []
    if kind in ("ClusterRoleBinding", "RoleBinding"):
        role = doc.get("roleRef") or {}
        if isinstance(role, dict) and role.get("name") in POWERFUL_ROLES:
            problems.append(f"{_name(doc)} grants the {role['name']!r} role: that widens privilege")
        for subject in doc.get("subjects") or []:
            group = isinstance(subject, dict) and subject.get("kind") == "Group"
            if group and str(subject.get("name", "")).startswith("system:"):
                problems.append(f"{_name(doc)} binds the built-in group {subject['name']!r} (everyone in it)")
    if kind in ("ClusterRole", "Role"):
        for rule in doc.get("rules") or []:
            if not isinstance(rule, dict):
                continue
            for key in ("verbs", "resources", "apiGroups", "nonResourceURLs"):
                values = rule.get(key) or []
                if isinstance(values, list) and any(str(v) == "*" or str(v).endswith("/*") for v in values):
                    problems.append(f"{_name(doc)} has a wildcard in {key}: that grants more than named")
            verbs = {str(v) for v in rule.get("verbs") or [] if isinstance(rule.get("verbs"), list)}
            if verbs & ESCALATING_VERBS:
                problems.append(f"{_name(doc)} grants {', '.join(sorted(verbs & ESCALATING_VERBS))}")
    return problems


def _label_problems(doc: dict[str, Any]) -> list[str]:
    meta = doc.get("metadata")
    labels = meta.get("labels") if isinstance(meta, dict) else None
    if not isinstance(labels, dict):
        return []
    return [
        f"{_name(doc)} sets {key}={value}: that lets privileged pods run there"
        for key, value in labels.items()
        if _PSS_LEVEL_LABEL.match(str(key)) and str(value) == "privileged"
    ]


def _falco_object_problems(doc: dict[str, Any]) -> list[str]:
    """Kubernetes objects that carry Falco rules (a ConfigMap of rules files) are checked as rules."""
    if doc.get("kind") != "ConfigMap" or not isinstance(doc.get("data"), dict):
        return []
    return [
        p
        for text in doc["data"].values()
        if isinstance(text, str)
        for d in _yaml_documents(text)
        for p in _document_problems(d)
    ]


def _falco_item_problems(item: dict[str, Any]) -> list[str]:
    """A Falco rules-file item that switches a rule off or makes it unable to fire."""
    name = item.get("rule") or item.get("macro") or item.get("list")
    problems: list[str] = []
    if "rule" in item and item.get("enabled") is False:
        problems.append(f"disables the Falco rule {name!r} (enabled: false)")
    condition = item.get("condition")
    if isinstance(condition, bool) or (
        isinstance(condition, str) and _TRIVIAL_CONDITION.match(condition.strip())
    ):
        what = "rule" if "rule" in item else "macro"
        problems.append(
            f"replaces the condition of the Falco {what} {name!r} by {condition!r}: it never fires"
        )
    return problems


def _pod_specs(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Pod specs in a Pod, a workload template or a CronJob's job template."""
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return
    if doc.get("kind") == "Pod":
        yield spec
    for path in (("template", "spec"), ("jobTemplate", "spec", "template", "spec")):
        node: Any = spec
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            yield node


def _pod_problems(spec: dict[str, Any]) -> list[str]:
    problems = [
        f"pod spec sets {key}: true (shares the node's namespaces)"
        for key in _HOST_NAMESPACES
        if spec.get(key) is True
    ]
    containers = [
        c
        for key in ("initContainers", "containers", "ephemeralContainers")
        for c in spec.get(key) or []
        if isinstance(c, dict)
    ]
    for volume in spec.get("volumes") or []:
        if isinstance(volume, dict) and "hostPath" in volume:
            problems += _host_path_problems(volume, containers)
    problems += _security_context_problems(spec.get("securityContext"), "pod")
    for container in containers:
        where = f"container {container.get('name', '?')}"
        problems += _security_context_problems(container.get("securityContext"), where)
    return problems


def _host_path_problems(volume: dict[str, Any], containers: list[dict[str, Any]]) -> list[str]:
    """A hostPath volume passes only narrowed: a non-sensitive path, every mount of it read-only."""
    source = volume["hostPath"] if isinstance(volume["hostPath"], dict) else {}
    path = str(source.get("path", "")).rstrip("/") or "/"
    name = volume.get("name", "?")
    if path in SENSITIVE_HOST_PATHS or path.endswith(".sock") or source.get("type") == "Socket":
        return [f"pod mounts the node's {path} (hostPath volume {name}): that hands over the node"]
    mounts = [
        m
        for c in containers
        for m in c.get("volumeMounts") or []
        if isinstance(m, dict) and m.get("name") == name
    ]
    if any(m.get("readOnly") is not True for m in mounts):
        return [f"pod mounts the node's {path} writable (hostPath volume {name})"]
    return []


def _security_context_problems(context: Any, where: str) -> list[str]:
    if not isinstance(context, dict):
        return []
    problems: list[str] = []
    if context.get("privileged") is True:
        problems.append(f"{where} is privileged")
    if context.get("allowPrivilegeEscalation") is True:
        problems.append(f"{where} sets allowPrivilegeEscalation: true")
    capabilities = context.get("capabilities")
    added = capabilities.get("add") if isinstance(capabilities, dict) else None
    if isinstance(added, list):
        caps = {str(c).upper().removeprefix("CAP_") for c in added}
        dropped = capabilities.get("drop") if isinstance(capabilities, dict) else None
        drops_all = isinstance(dropped, list) and "ALL" in {str(c).upper() for c in dropped}
        refused = caps & NODE_ROOT_CAPABILITIES if drops_all else caps - ALLOWED_CAPABILITIES
        if refused:
            problems.append(f"{where} adds capabilities {', '.join(sorted(refused))}")
    for key in ("seccompProfile", "appArmorProfile"):
        profile = context.get(key)
        if isinstance(profile, dict) and profile.get("type") == "Unconfined":
            problems.append(f"{where} sets {key} Unconfined")
    return problems
