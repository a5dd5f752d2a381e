"""Keep secrets out of everything hepnn writes or prints: :func:`redact`.

A secret is the password (or the whole userinfo) of a URL, ``scheme://user:password@host``,
and the value of a secret-looking query or command-line parameter (``password=``,
``passwd=``, ``pwd=``, ``token=``, ``key=``, ``secret=``, ``api_key=``, ``access_token=``
...). Everything else is returned unchanged, so a redacted URL still says which
database or host was used. Apply it to every text that may hold a user-given URL before
it is written (provenance, logs, CSV) or printed (console, error messages).

Examples
--------
>>> redact("postgresql://alice:s3cret@db.example.org:5432/optuna")
'postgresql://alice:***@db.example.org:5432/optuna'
>>> redact("https://host/x?user=bob&token=abc123&n=2")
'https://host/x?user=bob&token=***&n=2'
>>> redact("sqlite:////tmp/tune/study.db")
'sqlite:////tmp/tune/study.db'
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["redact", "redact_args", "MASK", "STORAGE_ENV"]

MASK = "***"
#: environment variable through which ``hepnn tune`` hands its storage URL to worker processes
STORAGE_ENV = "HEPNN_TUNE_STORAGE"

# scheme://user:password@  or  scheme://token@  (userinfo before the host)
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^\s/@:?#'\"]*)(?::(?P<pw>[^\s/?#'\"]*))?@")
_SECRET_KEYS = (r"password|passwd|pwd|pass|token|access_token|auth_token|refresh_token|api_key|apikey|key|"
                r"secret|client_secret|private_key|sig|signature|credentials?")
# key=value in a query string (?key=v&...) or a command/line argument (--key=v, key=v)
_PARAM = re.compile(rf"(?P<pre>(?:^|[?&;\s,]|--)(?:[A-Za-z0-9_\-.]*[_\-.])?(?:{_SECRET_KEYS}))=(?P<value>[^&;\s#'\",]+)",
                    re.IGNORECASE)


def _userinfo(match: re.Match) -> str:
    if match.group("pw") is not None:
        return f"{match.group('scheme')}{match.group('user')}:{MASK}@"
    return f"{match.group('scheme')}{MASK}@"  # a lone userinfo is often a token (https://TOKEN@host)


def redact(text: Any) -> Any:
    """``text`` with URL passwords/userinfo and secret parameter values replaced by ``***``.

    Strings (and ``os.PathLike``) are redacted; lists, tuples and dicts are redacted
    recursively (values only); anything else is returned unchanged.

    Examples
    --------
    >>> redact(["--storage", "mysql://u:p@h/db"])
    ['--storage', 'mysql://u:***@h/db']
    >>> redact("git+https://ghp_abc@github.com/x/y")
    'git+https://***@github.com/x/y'
    >>> redact("--api-key=XYZ rest")
    '--api-key=*** rest'
    """
    if isinstance(text, str):
        if "=" not in text and "@" not in text:
            return text
        text = _USERINFO.sub(_userinfo, text)
        return _PARAM.sub(lambda m: f"{m.group('pre')}={MASK}", text)
    if isinstance(text, list):
        return [redact(t) for t in text]
    if isinstance(text, tuple):
        return tuple(redact(t) for t in text)
    if isinstance(text, dict):
        return {k: redact(v) for k, v in text.items()}
    return text


def redact_args(argv: list[str]) -> list[str]:
    """A command line with secrets redacted, also a secret given as the next argument.

    Examples
    --------
    >>> redact_args(["hepnn", "tune", "c.yaml", "--token", "abc", "--storage", "redis://:pw@h:6379"])
    ['hepnn', 'tune', 'c.yaml', '--token', '***', '--storage', 'redis://:***@h:6379']
    """
    out = []
    secret_next = False
    for arg in argv:
        arg = str(arg)
        if secret_next and not arg.startswith("-"):
            out.append(MASK)
        else:
            out.append(redact(arg))
        secret_next = bool(re.fullmatch(rf"--?(?:[A-Za-z0-9]+[_\-])?(?:{_SECRET_KEYS})", arg, re.IGNORECASE))
    return out
