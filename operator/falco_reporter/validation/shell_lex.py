"""Splitting one shell command and finding shell syntax that would make it more than one."""

from __future__ import annotations

import re
import shlex

_OPERATOR_MESSAGES = {
    ";": "';' chains commands",
    "&": "'&' runs commands in the background or chains them (&&)",
    "|": "'|' pipes into another command (||, |)",
    ">": "'>' redirects output into a file or device",
    "<": "'<' redirects input (or is a process substitution)",
    "`": "backticks run a command substitution",
    "$(": "'$(' runs a command substitution",
    "\n": "more than one line: give exactly one command",
    "#": "'#' starts a comment",
}
_PIPE_TO_SHELL = re.compile(r"\|\s*(sudo\s+)?(ba|da|z|k|a)?sh\b")


def operator_errors(text: str) -> list[str]:
    """Shell control operators, redirections and substitutions outside quotes (one error per kind)."""
    found: list[str] = []
    quote = ""
    i = 0
    word_start = True
    while i < len(text):
        ch = text[i]
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if quote == "'":
            quote = "" if ch == "'" else quote
        elif ch == "\\" and nxt:
            i += 2  # an escaped character (e.g. find's \;) or a line continuation
            word_start = False
            continue
        elif quote == '"':
            if ch == '"':
                quote = ""
            elif ch == "`" or (ch == "$" and nxt == "("):
                found.append("`" if ch == "`" else "$(")
        elif ch in "'\"":
            quote = ch
        elif ch == "$" and nxt == "(":
            found.append("$(")
        elif ch in ";&|><`\n" or (ch == "#" and word_start):
            found.append(ch)
        word_start = ch in " \t\n"
        i += 1
    errors = [f"shell syntax not allowed: {_OPERATOR_MESSAGES[op]}" for op in dict.fromkeys(found)]
    if _PIPE_TO_SHELL.search(text):
        errors.insert(0, "pipes downloaded or generated text into a shell: that runs unreviewed code")
    if quote:
        errors.append(f"unterminated {quote} quote")
    return errors


def split(text: str) -> list[str]:
    """shlex words of ``text`` (line continuations removed); raise ValueError on bad quoting."""
    return shlex.split(text.replace("\\\n", " "), comments=False, posix=True)
