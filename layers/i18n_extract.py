"""Finding the pages' texts: the Babel extraction method of ``babel.cfg`` (``make messages``)
and the list of texts the browser scripts ask for (:func:`layers.i18n.js_catalogue`).

Babel's own extractors do the work; this adds what they cannot see in citygrid's code.
"""

from __future__ import annotations

import ast
import io
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from babel.messages.extract import DEFAULT_KEYWORDS, extract_javascript, extract_python

__all__ = ["extract", "extracted"]

# a call of _, N_ or gettext with a literal first argument, wherever it stands
_MARKED = re.compile(
    r"""(?<![\w])(?:N_|_|gettext)\(\s*(?P<q>["'])(?P<text>(?:\\.|(?!(?P=q))[^\\\n])*)(?P=q)\s*[,)]"""
)


def extract(
    fileobj: IO[bytes], keywords: Any, comment_tags: Any, options: dict[str, Any]
) -> Iterator[tuple[int, Any, Any, list[str]]]:
    """A Babel extraction method (``babel.cfg``): Babel's own extractor for the language
    (``options["language"]``: python or javascript), plus the marked texts it cannot see —
    calls inside Python 3.11 f-strings, which it reads as one string token, and calls its
    JavaScript lexer loses after a regular expression literal."""
    source = fileobj.read()
    language = options.get("language", "python")
    method: Any = extract_python if language == "python" else extract_javascript
    seen: set[str] = set()
    for lineno, funcname, message, comments in method(
        io.BytesIO(source), keywords, comment_tags, options
    ):
        first = message if isinstance(message, str) or message is None else message[0]
        seen.add(first or "")
        yield lineno, funcname, message, comments
    text = source.decode("utf-8")
    for match in _MARKED.finditer(text):
        literal = match.group("q") + match.group("text") + match.group("q")
        msgid = (
            ast.literal_eval(literal)
            if language == "python"
            else json.loads(literal if match.group("q") == '"' else '"' + match.group("text") + '"')
        )
        if msgid and msgid not in seen:
            seen.add(msgid)
            yield text.count("\n", 0, match.start()) + 1, "_", msgid, []


def extracted(paths: Iterable[Path]) -> dict[str, list[str]]:
    """``{msgid: [file, …]}`` of the marked texts in ``paths`` (``.py`` and ``.js``)."""
    found: dict[str, list[str]] = {}
    for path in sorted(paths):
        language = "javascript" if path.suffix == ".js" else "python"
        with path.open("rb") as f:
            for _line, _func, message, _comments in extract(
                f, DEFAULT_KEYWORDS, [], {"language": language}
            ):
                msgid = message if isinstance(message, str) or message is None else message[0]
                if msgid:
                    found.setdefault(msgid, []).append(path.name)
    return found
