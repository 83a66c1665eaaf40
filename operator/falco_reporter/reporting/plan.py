"""What to do, in the order a responder would do it, decided by the verdict.

likely-malicious: contain first (isolate exactly this pod, keep the evidence, replace it from a
clean image, check what its service account could reach), then harden; never an exception.
suspicious: confirm or rule out first, then harden; an exception only last and only once confirmed.
likely-benign: a scoped exception first, with how to confirm it. Health events: Falco settings.
"""

from __future__ import annotations

import hashlib
import shlex

from falco_reporter.models.report import ReportMitigation
from falco_reporter.reporting.context import ReportContext
from falco_reporter.reporting.evidence.fields import FieldView
from falco_reporter.reporting.evidence.judge import Judgement
from falco_reporter.reporting.exceptions import ExceptionPlan, plan_exception
from falco_reporter.reporting.fit import fit_manifest
from falco_reporter.reporting.values import fill_shell, fill_yaml, placeholder_values

QUARANTINE_LABEL = "falcoreporter.io/quarantine"


def _m(
    title: str, description: str, kind: str = "process", snippet: str = "", language: str = ""
) -> ReportMitigation:
    lang = language or ("shell" if kind == "command" else "yaml" if snippet else "text")
    return ReportMitigation.model_validate(
        {"title": title, "description": description, "kind": kind, "language": lang, "snippet": snippet}
    )


def plan(
    ctx: ReportContext, judgement: Judgement, *, has_steps: bool = True
) -> tuple[list[ReportMitigation], str]:
    """The ordered mitigations and, when no exception is offered, why not.

    ``has_steps`` says whether the report lists read-only investigation steps to point to.
    """
    view = FieldView(ctx.alert, ctx.enrichment)
    if judgement.health:
        return health_settings(ctx, judgement), ""
    hardening = _hardening(ctx, view)
    exception = plan_exception(ctx.alert.rule, ctx.entry.exception if ctx.entry else None, view)
    if judgement.verdict == "likely-malicious":
        return [*containment(ctx), *hardening], "no exception is offered for a likely-malicious alert"
    if judgement.verdict == "likely-benign":
        first = _exception(exception, judgement, first=True) or [
            _m(
                "Confirm the benign explanation; no exact exception can be offered",
                "If the benign evidence above holds, nothing needs fixing. To silence it, write an exception "
                f"by hand in your own rules: {exception.refused}.",
            )
        ]
        identity = judgement.identity
        if identity is not None and identity.actor.simulates_attacks:
            # A test tool's alerts are the point of running it: excepting them blinds the test.
            first.insert(
                0,
                _m(
                    f"Nothing to fix: a {identity.actor.name} test run",
                    "Check that the run was planned and remove the tool when the test ends; except its "
                    "pattern only if it runs permanently (next step).",
                ),
            )
        return [*first, *hardening], exception.refused
    confirm = _m(
        "Confirm or rule out before changing anything",
        "Ask the user (or the owner of the credential) whether the request was theirs and expected; treat "
        "it as an intrusion if the user, the verb or the command is not explained."
        if ctx.alert.source == "k8s_audit"
        else (
            "Run the read-only steps under Investigate; treat it as an intrusion if the program, its parent "
            "or its peer is not explained."
            if has_steps
            else "Ask the owner of the workload or host whether they ran it; treat it as an intrusion if the "
            "program, its parent or its peer is not explained."
        ),
    )
    # An entry whose own first step is a confirmation says it better for its rule than the generic one.
    first = [] if hardening and hardening[0].title.lower().startswith("confirm") else [confirm]
    return [*first, *hardening, *_exception(exception, judgement, first=False)], exception.refused


def _exception(exc: ExceptionPlan, judgement: Judgement, *, first: bool) -> list[ReportMitigation]:
    if not exc.snippet:
        return []
    benign = _benign(judgement)
    title = (
        "Except exactly this pattern in Falco" if first else "Only once confirmed benign: except exactly this"
    )
    how = " Confirm the benign evidence above first." if first and benign else ""
    return [
        _m(
            title,
            f"Appends an exception pinning {', '.join(exc.fields)} to the rule; load it after the upstream "
            f"rules (e.g. the Falco chart's customRules). The rule keeps firing for anything else.{how}",
            "falco-exception",
            exc.snippet,
            "yaml",
        )
    ]


def _benign(judgement: Judgement) -> str:
    return " ".join(e.observation for e in judgement.evidence if e.direction == "benign")[:400]


def containment(ctx: ReportContext) -> list[ReportMitigation]:
    enr = ctx.enrichment
    out: list[ReportMitigation] = []
    ns, pod = enr.namespace, enr.pod
    if enr.pod_found and ns and pod:
        mark = pod if len(pod) <= 63 else "p-" + hashlib.sha256(pod.encode()).hexdigest()[:20]
        q = shlex.quote
        out.append(
            _m(
                "Isolate this pod now: label it for quarantine",
                "Marks exactly this pod (not its siblings) so the NetworkPolicy below cuts its traffic; the "
                "pod keeps running, so its memory and files stay available for the investigation.",
                "command",
                f"kubectl label pod {q(pod)} -n {q(ns)} {QUARANTINE_LABEL}={q(mark)}",
            )
        )
        out.append(
            _m(
                "Deny all traffic to and from the quarantined pod",
                "A NetworkPolicy with no rules denies every connection of the pods it selects (your CNI "
                "must enforce NetworkPolicy). Delete it once the pod is gone.",
                "kubernetes-manifest",
                _quarantine_policy(ns, mark),
                "yaml",
            )
        )
        out.append(
            _m(
                "Preserve the evidence before replacing anything",
                "Save the pod's manifest and logs, then, on the node, the container's writable layer "
                "(crictl inspect shows its upperdir) and the running program (/proc/PID/exe).",
                "command",
                f"kubectl get pod {q(pod)} -n {q(ns)} -o yaml",
            )
        )
        kind, name = enr.workload.kind, enr.workload.name
        if kind in ("Deployment", "StatefulSet", "DaemonSet"):
            out.append(
                _m(
                    f"Replace the pods of {kind} {name} from the clean image",
                    "Once evidence is saved: new pods start from the image, without what was dropped in "
                    "this one. Find and fix how it got in first, or it will happen again.",
                    "command",
                    f"kubectl rollout restart {kind.lower()}/{q(name)} -n {q(ns)}",
                )
            )
        else:
            owner = f"{kind} {name}" if kind and kind != "Pod" else "its owner"
            out.append(
                _m(
                    "Replace the pod from the clean image",
                    f"Once evidence is saved, delete the pod so {owner} recreates it from the image (a bare "
                    "pod must be recreated by whoever created it); find how the intruder got in first.",
                )
            )
        if enr.automount_token and enr.service_account:
            account = f"system:serviceaccount:{ns}:{enr.service_account}"
            out.append(
                _m(
                    f"Rotate what service account {enr.service_account} could read",
                    "Its token was mounted in the pod: list what it may do, rotate every Secret it could "
                    "read, and review its bindings.",
                    "command",
                    f"kubectl auth can-i --list --as={q(account)} -n {q(ns)}",
                )
            )
    elif enr.node:
        out.append(
            _m(
                f"Stop new work landing on node {enr.node}",
                "The activity ran on the node itself: cordon it, keep it running for forensics, and "
                "rebuild it from a clean image once evidence is saved.",
                "command",
                f"kubectl cordon {shlex.quote(enr.node)}",
            )
        )
    else:
        out.append(
            _m(
                "Contain the host or container",
                "Cut the container's or host's network access with your platform's tools, keep it "
                "running for forensics, and rebuild it from a clean image once evidence is saved.",
            )
        )
    return out


def _quarantine_policy(namespace: str, mark: str) -> str:
    return (
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n"
        f"  name: falco-reporter-quarantine-{hashlib.sha256(mark.encode()).hexdigest()[:10]}\n"
        f"  namespace: {namespace}\nspec:\n  podSelector:\n    matchLabels:\n"
        f'      {QUARANTINE_LABEL}: "{mark}"\n  policyTypes: [Ingress, Egress]\n'
    )


def _hardening(ctx: ReportContext, view: FieldView) -> list[ReportMitigation]:
    if ctx.entry is None:
        return [
            _m(
                "Read the rule's condition",
                f"{ctx.alert.rule!r} is not in the knowledge base: find it in your Falco rules files and "
                "confirm what its condition matches for this workload.",
            )
        ]
    values = placeholder_values(ctx)
    exe_dir = view.get("proc.exe.dir")
    out: list[ReportMitigation] = []
    for m in ctx.entry.mitigations:
        filled = m.snippet
        if m.snippet and m.language == "shell":
            filled = fill_shell(m.snippet, values) or ""
        elif m.snippet and m.language == "yaml":
            filled = fill_yaml(m.snippet, values) or ""
            if filled and m.kind == "kubernetes-manifest":
                filled = fit_manifest(filled, ctx.enrichment, exe_dir)
        if m.snippet and not filled:
            continue
        out.append(_m(m.title, m.description, m.kind, filled, m.language))
    # A response that depends on the confirmation ("If the user is not recognised, revoke ...")
    # follows it directly; hardening can wait until the credential question is settled.
    return sorted(out, key=lambda m: not m.title.startswith("If "))


def health_settings(ctx: ReportContext, judgement: Judgement) -> list[ReportMitigation]:
    """Falco settings that address dropped events; nothing for routine snapshots."""
    rule = ctx.alert.rule.lower()
    if "drop" not in rule or judgement.severity in ("info", "low"):
        return []
    return [
        _m(
            "Give the kernel driver larger buffers",
            "Dropped events usually mean the per-CPU ring buffers fill faster than Falco reads them. A "
            "larger preset (each step doubles the size) absorbs bursts; memory grows with it.",
            "configuration",
            "engine:\n  kind: modern_ebpf\n  modern_ebpf:\n    buf_size_preset: 6\n",
            "yaml",
        ),
        _m(
            "Collect only the syscalls your rules need",
            "base_syscalls with repair: true lets Falco pick the minimal set of syscalls the loaded rules "
            "use, which cuts the event rate on busy nodes.",
            "configuration",
            "base_syscalls:\n  repair: true\n",
            "yaml",
        ),
        _m(
            "Give Falco more CPU",
            "A CPU limit that throttles Falco makes it fall behind the kernel; raise the limit of the Falco "
            "DaemonSet (the Falco chart's resources.limits.cpu) and watch the drop rate in its metrics.",
        ),
    ]
