"""The option allow-lists themselves: one Spec per read-only host tool (see shell_flags.Spec)."""

from __future__ import annotations

from falco_reporter.validation.shell_flags import Spec, spec_policy
from falco_reporter.validation.shell_tools import TOOL_POLICIES, Report, ToolCheck

_GREP = Spec(
    "EFGPiywxcLloqsbHhnTZzUavrRI" + "e:f:m:A:B:C:d:D:",
    "--color --color= --colour= --include= --exclude= --exclude-dir= --line-number --ignore-case "
    "--recursive --count --files-with-matches --files-without-match --only-matching --word-regexp "
    "--line-regexp --extended-regexp --fixed-strings --perl-regexp --invert-match --with-filename "
    "--no-filename --max-count= --text --binary-files= --null --label= --context= --after-context= "
    "--before-context= --regexp= --file= --quiet --silent --no-messages --null-data",
    numeric=True,
)
_SUM = Spec("bctwz", "--binary --check --tag --text --zero --ignore-missing --quiet --status --strict --warn")
_LAST = Spec(
    "adFiwRx" + "f:n:s:t:p:",
    "--limit= --since= --until= --present= --hostlast --ip --dns --fulltimes --nohostname --system "
    "--time-format= --fullnames",
    numeric=True,
)
_AUDIT_COMMON = (
    "-i --interpret -if= --input= --input-logs -ts= -te= --start= --end= -k= --key= -m= --message= "
    "--success= --failed --summary --node= -n= --format= --escape= --debug"
)
SPECS: dict[str, Spec] = {
    "ps": Spec(
        "aAcdefFHjlLmMNrSTvwxXyZ" + "o:O:p:q:s:t:u:U:g:G:C:k:",
        "--forest --sort= --format= --pid= --ppid= --user= --cols= --columns= --width= --no-headers "
        "--headers --sid= --group= --cumulative --context --lines= --rows= --help --version",
    ),
    "pstree": Spec(
        "aAcghlnpsStTuUZ" + "H:",
        "--arguments --ascii --compact-not --show-pgids --highlight-all --highlight-pid= --long "
        "--numeric-sort --show-pids --show-parents --ns-sort= --thread-names --hide-threads "
        "--uid-changes --unicode --security-context --version",
        max_args=2,
    ),
    "pgrep": Spec(
        "acfilnovwx" + "d:F:g:G:O:P:r:s:t:u:U:",
        "--delimiter= --list-name --list-full --inverse --count --full --ignore-case --newest --oldest "
        "--exact --parent= --uid= --euid= --group= --session= --terminal= --ns= --nslist= --older=",
    ),
    "pidof": Spec("cnqsxz" + "o:", max_args=None),
    "ls": Spec(
        "aAbBcCdfFgGhHiklLmnNopqQrRsStuUvxXZ1" + "I:T:w:",
        "--all --almost-all --human-readable --si --full-time --time-style= --sort= --time= --color "
        "--color= --classify --inode --numeric-uid-gid --recursive --reverse --dereference --directory "
        "--context --group-directories-first --no-group --format= --indicator-style= --block-size= "
        "--ignore= --hide= --width= --quoting-style= --literal --escape --help --version",
    ),
    "tree": Spec("aACdDfFghilnNpqrsStuvxJX" + "L:P:I:o:", "--noreport --charset= --du --prune", writes="o"),
    "cat": Spec(
        "AbeEnstTuv",
        "--show-all --number-nonblank --number --squeeze-blank --show-ends --show-tabs --show-nonprinting",
    ),
    "head": Spec(
        "qvz" + "c:n:", "--bytes= --lines= --quiet --silent --verbose --zero-terminated", numeric=True
    ),
    "tail": Spec(
        "fFqvz" + "c:n:s:",
        "--bytes= --lines= --follow --follow= --retry --pid= --quiet --silent --sleep-interval= "
        "--verbose --zero-terminated",
        numeric=True,
    ),
    "stat": Spec("fLtZ" + "c:", "--dereference --file-system --format= --printf= --terse --cached="),
    "file": Spec(
        "bcEhiklLnNprsSvzZ0" + "e:f:F:m:P:",
        "--brief --mime --mime-type --mime-encoding --dereference --no-dereference --special-files "
        "--uncompress --keep-going --raw --extension --apple --print0",
    ),
    "strings": Spec(
        "adfow" + "n:t:e:T:s:",
        "--all --bytes= --radix= --encoding= --print-file-name --data --include-all-whitespace",
        numeric=True,
    ),
    "readlink": Spec(
        "efmnqsvz", "--canonicalize --canonicalize-existing --canonicalize-missing --no-newline"
    ),
    "realpath": Spec("eLmPqsz", "--relative-to= --relative-base= --canonicalize-existing --no-symlinks"),
    "grep": _GREP,
    "egrep": _GREP,
    "fgrep": _GREP,
    "zgrep": _GREP,
    "wc": Spec("cmlLw", "--bytes --chars --lines --words --max-line-length --total="),
    "cut": Spec(
        "nsz" + "b:c:d:f:", "--bytes= --characters= --delimiter= --fields= --complement --only-delimited"
    ),
    # uniq [INPUT [OUTPUT]]: a second argument would overwrite a file.
    "uniq": Spec(
        "cdDiuz" + "f:s:w:",
        "--count --repeated --all-repeated --all-repeated= --unique --ignore-case --skip-fields= "
        "--skip-chars= --check-chars= --zero-terminated --group --group=",
        max_args=1,
    ),
    "jq": Spec(
        "acCejMnrRsS" + "f:L:",
        "--compact-output --raw-output --join-output --ascii-output --sort-keys --exit-status --slurp "
        "--null-input --raw-input --tab --indent= --arg== --argjson== --slurpfile== --rawfile== --args "
        "--jsonargs --from-file= --stream --seq",
    ),
    "base64": Spec("di" + "w:", "--decode --ignore-garbage --wrap=", max_args=1),
    # xxd [INFILE [OUTFILE]]: no -r (patches binaries back) and no output file.
    "xxd": Spec("abdeEiCpu" + "c:g:l:n:o:s:", "-autoskip -bits -cols= -len= -seek= -plain -ps", max_args=1),
    "hexdump": Spec("bcCdovx" + "e:f:n:s:"),
    "od": Spec("bcdfilosvx" + "A:j:N:S:t:w:", "--address-radix= --skip-bytes= --read-bytes= --format="),
    "cmp": Spec(
        "blsz" + "i:n:", "--verbose --print-bytes --quiet --silent --ignore-initial= --bytes=", max_args=4
    ),
    "diff": Spec(
        "abBdeEiNnpqrsStTuwyZ" + "C:D:F:I:L:U:W:x:X:",
        "--brief --recursive --unified --unified= --context= --ignore-all-space --ignore-space-change "
        "--ignore-blank-lines --ignore-case --side-by-side --suppress-common-lines --color --color= "
        "--label= --new-file --text --exclude= --report-identical-files --normal --strip-trailing-cr "
        "--no-dereference",
    ),
    **dict.fromkeys(("sha256sum", "sha1sum", "sha512sum", "md5sum"), _SUM),
    "getfacl": Spec(
        "aceEnpPLRst",
        "--access --omit-header --all-effective --no-effective --skip-base --recursive --logical "
        "--physical --tabular --absolute-names --numeric",
    ),
    "getcap": Spec("nrv"),
    "getpcaps": Spec("", "--legacy --verbose --ugly --iab"),
    "id": Spec("agGnruzZ", "--group --groups --name --real --user --zero --context", max_args=1),
    "getent": Spec("i" + "s:", "--no-idn --service="),
    "groups": Spec(),
    "last": _LAST,
    "lastb": _LAST,
    # No -C (clears records) or -S (sets them).
    "lastlog": Spec("" + "b:t:u:", "--before= --time= --user=", max_args=0),
    "who": Spec(
        "abdHlmpqrsTtuw", "--all --boot --dead --heading --login --lookup --process --count", max_args=2
    ),
    "w": Spec("fhiopsu", "--no-header --no-current --short --from --ip-addr --old-style --pids", max_args=1),
    "whoami": Spec(max_args=0),
    "uname": Spec(
        "aimnoprsv",
        "--all --kernel-name --nodename --kernel-release --kernel-version --machine --processor "
        "--hardware-platform --operating-system",
        max_args=0,
    ),
    "uptime": Spec("ps", "--pretty --since", max_args=0),
    "lscpu": Spec(
        "abBcCeJpxy" + "s:",
        "--all --online --offline --json --extended --extended= --parse --parse=",
        max_args=0,
    ),
    "free": Spec(
        "bghklLmtvw" + "c:s:",
        "--human --si --total --wide --bytes --kibi --mebi --gibi --seconds= --count=",
        max_args=0,
    ),
    "vmstat": Spec(
        "adfmnstwy" + "S:p:", "--active --disk --slabs --stats --wide --timestamp --unit=", max_args=2
    ),
    "df": Spec(
        "ahHiklPTv" + "B:t:x:",
        "--all --human-readable --si --inodes --local --print-type --portability --output --output= "
        "--total --block-size= --type= --exclude-type=",
    ),
    "du": Spec(
        "0abcDhHkLlmPsSx" + "B:d:t:X:",
        "--max-depth= --summarize --human-readable --apparent-size --all --one-file-system --exclude= "
        "--total --time --threshold= --block-size= --dereference",
    ),
    "findmnt": Spec(
        "AabcDfiJklnPrRsUuvxy" + "d:F:M:N:o:O:S:T:t:w:",
        "--kernel --list --json --output= --target= --source= --types= --mountpoint= --submounts --real "
        "--pseudo --nofsroot --noheadings --raw --tree --verbose --task= --df --mtab --fstab",
        max_args=2,
    ),
    "lsblk": Spec(
        "abdDfJlmnOprsStzAM" + "e:I:o:x:E:Q:T:", "--all --fs --json --list --output= --paths --raw --topology"
    ),
    "lsmod": Spec(max_args=0),
    "modinfo": Spec("0adlnp" + "F:k:b:", "--author --description --license --parameters --filename --field="),
    "lsns": Spec(
        "JlnruW" + "o:p:t:",
        "--json --list --noheadings --output= --task= --type= --raw --notruncate",
        max_args=1,
    ),
    "lsof": Spec("abhlnNOPRtUVwXKZ" + "c:d:F:g:i:p:s:u:r:T:"),  # +D DIR, +L1: positional words
    # ss: no -K (kills sockets) and no -D FILE (dumps raw socket data into a file).
    "ss": Spec(
        "hVHOnraloempiTsEZzb460tSudwxM" + "N:f:A:F:",
        "--numeric --resolve --all --listening --options --extended --memory --processes --info "
        "--summary --tcp --udp --unix --raw --ipv4 --ipv6 --no-header --oneline --family= --query= "
        "--tipc --vsock --xdp --threads --cgroup --inet-sockopt --packet --sctp --dccp --mptcp",
    ),
    "netstat": Spec(
        "aAcCeFgilMnNoprstuvwWxZ46",
        "--all --numeric --programs --listening --tcp --udp --unix --route --interfaces --statistics "
        "--extend --timers --wide --continuous",
        max_args=0,
    ),
    "printenv": Spec("0", "--null"),
    # ausearch/aureport: no --checkpoint (writes a file).
    "ausearch": Spec(
        "irw",
        _AUDIT_COMMON
        + " -a= -c= --comm= -e= -f= --file= -ga= -ge= -gi= -hn= -p= --pid= -pp= -sc= -se= -sv= -tm= "
        "-ua= -ue= -ui= -uu= -vm= -x= --raw --just-one --line-buffered --session=",
        max_args=0,
    ),
    "aureport": Spec(
        "acefhiklmnprstux",
        _AUDIT_COMMON + " -au -cr -tm --auth --config --event --file --host --login --mods --pid --syscall "
        "--terminal --user --executable --anomaly --avc --comm",
        max_args=0,
    ),
    "dig": Spec("46hmruv" + "b:c:f:k:p:q:t:x:y:"),
    "nslookup": Spec("", "-query= -type= -port= -timeout= -retry= -debug -nodebug -vc -novc", max_args=2),
    "host": Spec("aAdilrsTUvVw46C" + "c:N:R:t:W:m:", max_args=2),
    # ping: no -f (flood).
    "ping": Spec("46aAbBdDhLnOqrRUvV" + "c:i:I:l:m:M:p:Q:s:S:t:T:w:W:", max_args=1),
    "traceroute": Spec("46AdeFInrTUV" + "f:g:i:m:N:p:t:l:s:q:w:z:M:O:P:", max_args=2),
    # iptables-save: no -f FILE (writes) or -M (runs a modprobe program).
    "iptables-save": Spec("c" + "t:", "--counters --table=", max_args=0),
    "ip6tables-save": Spec("c" + "t:", "--counters --table=", max_args=0),
    "readelf": Spec(
        "aAcdDeghIlnrsStuVWwz" + "x:p:R:",
        "--all --file-header --program-headers --segments --section-headers --sections --symbols --syms "
        "--dyn-syms --dynamic --notes --relocs --version-info --arch-specific --use-dynamic --hex-dump= "
        "--string-dump= --relocated-dump= --debug-dump --debug-dump= --histogram --wide --headers",
    ),
    "objdump": Spec(
        "aCdDeEfFghHilLprRsStTwWxz" + "b:j:m:M:",
        "--disassemble --disassemble= --syms --dynamic-syms --headers --section-headers --all-headers "
        "--private-headers --file-headers --full-contents --section= --demangle --dynamic-reloc --reloc "
        "--start-address= --stop-address=",
    ),
    "nm": Spec(
        "aABCDgjlnoprsPuvVX" + "f:t:",
        "--dynamic --demangle --defined-only --undefined-only --extern-only --numeric-sort "
        "--print-file-name --format= --radix= --size-sort --line-numbers",
    ),
    # tcpdump: captures only to scratch files (-w), never -z (runs a command on each file).
    "tcpdump": Spec(
        "AbdDehHIJKlLnNOpqStuUvxX#" + "B:c:C:E:F:G:i:j:M:r:s:T:V:w:W:y:Q:Z:",
        "--interface= --count= --snapshot-length= --immediate-mode --no-promiscuous-mode --number "
        "--list-interfaces --print --direction= --version --micro --nano --time-stamp-precision=",
        writes="w",
    ),
    "sort": Spec(
        "bcCdfghiMmnRrsuVz" + "k:t:S:T:o:",
        "--key= --field-separator= --numeric-sort --reverse --unique --human-numeric-sort --version-sort "
        "--general-numeric-sort --ignore-case --stable --output= --parallel= --buffer-size= --check "
        "--merge --random-sort --month-sort --zero-terminated",
        writes="o --output",
    ),
    # dmesg: reading only; -c/-C clear the ring buffer, -D/-E/-n change console logging.
    "dmesg": Spec(
        "dehHJkLPprStTuwWx" + "f:F:l:s:",
        "--ctime --human --follow --follow-new --kernel --userspace --decode --level= --facility= "
        "--notime --reltime --raw --json --since= --until= --time-format= --color --color= --nopager "
        "--show-delta --force-prefix",
        max_args=0,
    ),
    # journalctl: reading only; no --vacuum-*, --rotate, --flush, --sync, --setup-keys, --update-catalog.
    "journalctl": Spec(
        "abefhklmNqrxR" + "D:F:g:I:M:n:o:p:S:t:T:u:U:",
        "--since= --until= --unit= --user-unit= --identifier= --priority= --lines= --lines --output= "
        "--boot --boot= --dmesg --follow --no-pager --pager-end --reverse --utc --all --catalog --merge "
        "--grep= --case-sensitive= --list-boots --field= --output-fields= --system --user --directory= "
        "--file= --machine= --no-hostname --quiet --cursor= --after-cursor= --show-cursor --disk-usage "
        "--no-full --full --facility= --namespace=",
    ),
}
# Tools whose semantic check (shell_tools) also gets an option allow-list: these write files through
# options a deny-list missed (curl -D/-c/--trace, psql -o/-L, mysql --tee/--pager, yq -s).
_CURL = Spec(
    "fGiIkLNsSv46" + "A:H:m:r:w:x:X:E:",
    "--fail --fail-with-body --silent --show-error --location --head --include --verbose --insecure "
    "--compressed --get --http1.1 --http2 --no-buffer --max-time= --connect-timeout= --header= "
    "--user-agent= --cacert= --capath= --cert= --key= --resolve= --noproxy= --proxy= --retry= "
    "--write-out= --request= --url= --range= --max-filesize= --unix-socket= --abstract-unix-socket= "
    "--interface= --ipv4 --ipv6 --max-redirs= --oauth2-bearer= --json",
)
_YQ = Spec(
    "CeEjMnNPr" + "I:o:p:",
    "--colors --no-colors --exit-status --null-input --no-doc --prettyPrint --unwrapScalar --indent= "
    "--output-format= --input-format= --expression= --header-preprocess --front-matter= --tojson",
)
_PSQL = Spec(
    "AeEnqstwWxX" + "c:d:F:h:p:P:R:U:v:",
    "--command= --dbname= --host= --port= --username= --no-password --password --no-align --tuples-only "
    "--expanded --quiet --no-psqlrc --csv --field-separator= --record-separator= --pset= --set= "
    "--variable= --echo-queries --echo-hidden",
)
_MYSQL = Spec(
    "BEnNprstv" + "D:e:h:P:S:u:",
    "--batch --execute= --user= --host= --port= --database= --protocol= --socket= --skip-column-names "
    "--silent --table --raw --vertical --defaults-file= --ssl-mode= --password --password=",
)


def _chained(*checks: ToolCheck) -> ToolCheck:
    def check(args: list[str], report: Report) -> list[list[str]]:
        inner: list[list[str]] = []
        for each in checks:
            inner += each(args, report)
        return inner

    return check


SPEC_POLICIES: dict[str, ToolCheck] = {
    **{program: spec_policy(program, spec) for program, spec in SPECS.items()},
    **{
        program: _chained(spec_policy(program, spec), TOOL_POLICIES[program])
        for program, spec in {"curl": _CURL, "yq": _YQ, "psql": _PSQL, "mysql": _MYSQL}.items()
    },
}
