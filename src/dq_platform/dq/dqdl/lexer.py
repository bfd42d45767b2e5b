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


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    i, line, line_start, n = 0, 1, 0, len(source)
    while i < n:
        ch = source[i]
        col = i - line_start + 1
        if ch == "\n":
            i += 1
            line += 1
            line_start = i
            continue
        if ch in " \t\r":
            i += 1
            continue
        if ch == "#":
            while i < n and source[i] != "\n":
                i += 1
            continue
        if ch == '"':
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
            tokens.append(Token("STRING", "".join(out), line, col, i, j + 1))
            i = j + 1
            continue
        if ch == "$":
            j = i + 1
            while j < n and (source[j].isalnum() or source[j] == "_"):
                j += 1
            if j == i + 1:
                raise DQDLSyntaxError("expected a variable name after '$'", line, col)
            tokens.append(Token("VAR", source[i + 1 : j], line, col, i, j))
            i = j
            continue
        if ch.isdigit():
            j = i
            while j < n and source[j].isdigit():
                j += 1
            if j + 1 < n and source[j] == "." and source[j + 1].isdigit():
                j += 1
                while j < n and source[j].isdigit():
                    j += 1
            if j < n and (source[j].isalpha() or source[j] == "_"):
                # identifiers may start with a digit in DQDL (e.g. a bare column `1st_party`)
                while j < n and _is_ident_char(source[j]):
                    j += 1
                tokens.append(Token("IDENT", source[i:j], line, col, i, j))
            else:
                tokens.append(Token("NUMBER", source[i:j], line, col, i, j))
            i = j
            continue
        if ch.isalpha() or ch == "_":
            j = i
            while j < n and _is_ident_char(source[j]):
                j += 1
            tokens.append(Token("IDENT", source[i:j], line, col, i, j))
            i = j
            continue
        two = source[i : i + 2]
        if two in _TWO_CHAR_OPS:
            tokens.append(Token("OP", "=" if two == "==" else two, line, col, i, i + 2))
            i += 2
            continue
        if ch in _ONE_CHAR_OPS:
            tokens.append(Token("OP", ch, line, col, i, i + 1))
            i += 1
            continue
        if ch in _PUNCT:
            tokens.append(Token("PUNCT", ch, line, col, i, i + 1))
            i += 1
            continue
        raise DQDLSyntaxError(f"unexpected character {ch!r}", line, col)
    tokens.append(Token("EOF", "", line, i - line_start + 1, n, n))
    return tokens
