"""DQDL tokens with line/column positions, so every parse error can point at the exact spot."""

from __future__ import annotations

from dataclasses import dataclass

from dq_platform.dq.dqdl.ast import DQDLSyntaxError

# kinds: STRING NUMBER IDENT VAR OP PUNCT EOF
_PUNCT = "[](){},:"
_TWO_CHAR_OPS = (">=", "<=", "!=", "==")
_ONE_CHAR_OPS = "=<>+-*/"


@dataclass(frozen=True)
class Token:
    kind: str
    text: str  # source text (for STRING: the decoded value)
    line: int
    column: int
    start: int
    end: int

    def describe(self) -> str:
        if self.kind == "EOF":
            return "end of input"
        if self.kind == "STRING":
            return f'string "{self.text}"'
        return f"'{self.text}'"


def _is_ident_char(ch: str) -> bool:
    return ch.isalnum() or ch in "_."


def _string(source: str, i: int, line: int, col: int) -> Token:
    """A double-quoted string from `i`; `\\"` and `\\\\` are escapes; it may not span lines."""
    n = len(source)
    j, out = i + 1, []
    while True:
        if j >= n or source[j] == "\n":
            raise DQDLSyntaxError("unterminated string: expected a closing '\"'", line, col)
        c = source[j]
        if c == "\\" and j + 1 < n and source[j + 1] in '"\\':
            out.append(source[j + 1])
            j += 2
            continue
        if c == '"':
            break
        out.append(c)
        j += 1
    return Token("STRING", "".join(out), line, col, i, j + 1)


def _variable(source: str, i: int, line: int, col: int) -> Token:
    j = i + 1
    while j < len(source) and (source[j].isalnum() or source[j] == "_"):
        j += 1
    if j == i + 1:
        raise DQDLSyntaxError("expected a variable name after '$'", line, col)
    return Token("VAR", source[i + 1 : j], line, col, i, j)


def _digits(source: str, j: int) -> int:
    while j < len(source) and source[j].isdigit():
        j += 1
    return j


def _ident_end(source: str, j: int) -> int:
    while j < len(source) and _is_ident_char(source[j]):
        j += 1
    return j


def _number(source: str, i: int, line: int, col: int) -> Token:
    n = len(source)
    j = _digits(source, i)
    if j + 1 < n and source[j] == "." and source[j + 1].isdigit():
        j = _digits(source, j + 1)
    if j < n and (source[j].isalpha() or source[j] == "_"):
        # identifiers may start with a digit in DQDL (e.g. a bare column `1st_party`)
        j = _ident_end(source, j)
        return Token("IDENT", source[i:j], line, col, i, j)
    return Token("NUMBER", source[i:j], line, col, i, j)


def _symbol(source: str, i: int, line: int, col: int) -> Token:
    ch, two = source[i], source[i : i + 2]
    if two in _TWO_CHAR_OPS:
        return Token("OP", "=" if two == "==" else two, line, col, i, i + 2)
    if ch in _ONE_CHAR_OPS:
        return Token("OP", ch, line, col, i, i + 1)
    if ch in _PUNCT:
        return Token("PUNCT", ch, line, col, i, i + 1)
    raise DQDLSyntaxError(f"unexpected character {ch!r}", line, col)


def _token_at(source: str, i: int, line: int, col: int) -> Token:
    ch = source[i]
    if ch == '"':
        return _string(source, i, line, col)
    if ch == "$":
        return _variable(source, i, line, col)
    if ch.isdigit():
        return _number(source, i, line, col)
    if ch.isalpha() or ch == "_":
        j = _ident_end(source, i)
        return Token("IDENT", source[i:j], line, col, i, j)
    return _symbol(source, i, line, col)


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    i, line, line_start, n = 0, 1, 0, len(source)
    while i < n:
        ch = source[i]
        if ch == "\n":
            i += 1
            line += 1
            line_start = i
        elif ch in " \t\r":
            i += 1
        elif ch == "#":
            while i < n and source[i] != "\n":
                i += 1
        else:
            token = _token_at(source, i, line, i - line_start + 1)
            tokens.append(token)
            i = token.end
    tokens.append(Token("EOF", "", line, i - line_start + 1, n, n))
    return tokens
