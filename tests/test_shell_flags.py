"""Per-tool option allow-lists: write, kill and exec modes are refused, read-only uses pass."""

from __future__ import annotations

import pytest

from falco_reporter.validation import validate_command
from falco_reporter.validation.shell_policy import KNOWN_PROGRAMS
from falco_reporter.validation.shell_specs import SPECS

REFUSED = {
    "tcpdump -w /etc/passwd": "tcpdump -w /etc/passwd: writes a file; only under /tmp/ or /var/tmp/",
    "uniq a /etc/shadow": "uniq: at most 1 argument(s), got 2",
    "xxd -r x /usr/bin/ls": "xxd -r: option not allowed",
    "ss -K": "ss -K: option not allowed",
    "ss -tnp -K dst 10.0.0.1": "ss -K: option not allowed",
    "ss -D /etc/cron.d/x": "ss -D: option not allowed",
    "tcpdump -i any -z /tmp/evil.sh -w /tmp/c.pcap": "tcpdump -z: option not allowed",
    "tcpdump -w /tmp/../etc/passwd": "writes a file; only under /tmp/",
    "tcpdump -w capture.pcap": "tcpdump -w capture.pcap: writes a file",
    "sort -o /etc/hosts /tmp/hosts": "sort -o /etc/hosts: writes a file",
    "sort --output=/root/.bashrc x": "sort --output /root/.bashrc: writes a file",
    "tree -o /etc/motd /": "tree -o /etc/motd: writes a file",
    "dmesg -C": "dmesg -C: option not allowed",
    "dmesg --clear": "dmesg --clear: option not allowed",
    "journalctl --vacuum-time=1s": "journalctl --vacuum-time: option not allowed",
    "journalctl --rotate": "journalctl --rotate: option not allowed",
    "lastlog -C -u root": "lastlog -C: option not allowed",
    "ping -f 10.0.0.1": "ping -f: option not allowed",
    "iptables-save -f /etc/iptables.rules": "iptables-save -f: option not allowed",
    "ausearch --checkpoint /etc/x": "ausearch --checkpoint: option not allowed",
    "base64 -d in /usr/bin/ls": "base64: at most 1 argument(s)",
    "uname -r extra": "uname: at most 0 argument(s)",
    "kubectl cp ns/pod:/etc/shadow /etc/shadow": "kubectl cp DEST /etc/shadow: writes a file",
    "kubectl port-forward --address 0.0.0.0 pod/web 8080": "only localhost",
    "kubectl config view --raw": "prints credentials",
    "helm template falco falcosecurity/falco --output-dir /etc/kubernetes": "writes a file",
    "nsenter -t 1 -n ss -K": "inside nsenter: ss -K: option not allowed",
    "curl -s -D /etc/profile.d/x.sh https://example.com": "curl -D: option not allowed",
    "curl -c /root/.bashrc https://example.com": "curl -c: option not allowed",
    "curl --trace /etc/passwd https://example.com": "curl --trace: option not allowed",
    "psql -U postgres -c 'SELECT 1' -o /etc/passwd": "psql -o: option not allowed",
    "mysql -e 'SELECT 1' --tee=/etc/passwd": "mysql --tee: option not allowed",
    "mysql -e 'SHOW DATABASES' --pager=/tmp/x.sh": "mysql --pager: option not allowed",
    "yq -s '.a' file.yaml": "yq -s: option not allowed",
    "bpftool prog dump jited id 7 file /usr/bin/ls": "'dump ... file F' writes F",
    "kubectl kustomize ./overlay -o /etc/kubernetes/manifests/x.yaml": "kubectl kustomize --output",
}


@pytest.mark.parametrize(("command", "expected"), REFUSED.items(), ids=list(REFUSED))
def test_write_kill_and_exec_modes_are_refused(command, expected):
    """Each command uses an option or argument that writes, kills or runs something, and is refused."""
    result = validate_command(command)
    assert not result.ok
    assert expected in "\n".join(result.errors)


ACCEPTED = [
    "tcpdump -nn -i any -c 200 -w /tmp/falco-capture.pcap host 10.0.0.5",
    "tcpdump -r /tmp/falco-capture.pcap -nn",
    "uniq -c /tmp/names",
    "xxd -l 64 /proc/1/exe",
    "ss -tunap",
    "ss -tnp state established '( dport = :22 or sport = :22 )'",
    "sort -o /tmp/sorted.txt /tmp/names",
    "head -20 /var/log/auth.log",
    "tail -n 50 -F /var/log/syslog",
    "ps -eo pid,ppid,user,lstart,args --forest",
    "stat -fc %T /sys/fs/cgroup/",
    "jq -c --arg u alice 'select(.user.username == $u)' /var/log/kubernetes/audit/audit.log",
    "journalctl _COMM=sshd --since=-24h -o json --no-pager",
    "dmesg -T --level=err,warn",
    "ausearch -m EXECVE -ts recent -i",
    "grep -rn -E 'miner|xmrig' /etc/cron.d",
    "lsof -nP -p 1234",
    "last -20",
    "kubectl cp ns/pod:/var/log/app.log /tmp/app.log",
    "kubectl port-forward --address=127.0.0.1 pod/web 8080:80",
    "helm template falco falcosecurity/falco --output-dir /tmp/falco-chart",
    "curl -sS -m 5 -H 'Metadata-Flavor: Google' http://169.254.169.254/computeMetadata/v1/",
    "psql -U postgres -At -c 'SELECT usename FROM pg_stat_activity'",
    "mysql -u root -e 'SHOW PROCESSLIST' --batch",
    "yq -o json '.spec' /tmp/deploy.yaml",
    "bpftool prog dump xlated id 7",
]


@pytest.mark.parametrize("command", ACCEPTED)
def test_read_only_uses_pass(command):
    """Ordinary read-only uses of the same tools, and writes into scratch space, are accepted."""
    result = validate_command(command)
    assert result.ok, result.errors


def test_every_spec_tool_is_a_known_program_and_lists_no_mode_twice():
    """Each allow-listed tool is known to the policy, and no short letter is both plain and valued."""
    assert set(SPECS) <= KNOWN_PROGRAMS
    for program, spec in SPECS.items():
        letters = spec.short.replace(":", "")
        assert len(letters) == len(set(letters)), program
