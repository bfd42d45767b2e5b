"""A slow, character-by-character model of docs/dq.md's record rules: the oracle the vectorised reader
boundaries (`dq.records`) and the independent count (`dq.recount`) are both checked against."""

from __future__ import annotations

Line = tuple[bytes, bytes]  # (text, terminator)


def split_lines(data: bytes) -> list[Line]:
    """Physical lines: each ends at LF, CRLF or a lone CR; a final line without terminator counts."""
    out: list[Line] = []
    start = i = 0
    while i < len(data):
        if data[i] == 10:
            out.append((data[start:i], b"\n"))
            i += 1
            start = i
        elif data[i] == 13:
            term = b"\r\n" if data[i + 1 : i + 2] == b"\n" else b"\r"
            out.append((data[start:i], term))
            i += len(term)
            start = i
        else:
            i += 1
    if start < len(data):
        out.append((data[start:], b""))
    return out


def _lex(lines: list[Line], first: int, max_lines: int) -> tuple[int, int, bool, bool]:
    """(last line, fields, strict, closed) of the record starting at `first`."""
    allowed = min(first + max_lines, len(lines)) - 1
    cur, pos, text = first, 0, lines[first][0]
    fields, strict, state = 1, True, "start"
    while True:
        if pos >= len(text):
            if state != "quoted":
                return cur, fields, strict, True
            if cur == allowed:
                return first, fields, strict, False
            cur, pos, text = cur + 1, 0, lines[cur + 1][0]
            continue
        c = text[pos]
        if state == "start":
            state = "quoted" if c == 34 else "unquoted"
            pos += 1 if c == 34 else 0
        elif state == "unquoted":
            if c == 44:
                fields, state = fields + 1, "start"
            pos += 1
        elif c != 34:
            pos += 1
        elif text[pos + 1 : pos + 2] == b'"':
            pos += 2
        else:
            pos, state = pos + 1, "unquoted"
            strict = strict and text[pos : pos + 1] in (b"", b",")


def csv_records(data: bytes, width: int, max_lines: int) -> list[tuple[int, int, bool]]:
    """(first line, last line, unterminated) of each record after the header line (0-based lines)."""
    lines = split_lines(data)
    out: list[tuple[int, int, bool]] = []
    i = 1
    while i < len(lines):
        if not lines[i][0]:
            i += 1
            continue
        last, fields, strict, closed = _lex(lines, i, max_lines)
        if closed and (last == i or (strict and fields == width)):
            out.append((i, last, False))
            i = last + 1
        else:
            out.append((i, i, True))
            i += 1
    return out


def jsonl_records(data: bytes) -> list[int]:
    """0-based lines that are JSON-lines records (anything but spaces and tabs)."""
    return [i for i, (text, _) in enumerate(split_lines(data)) if text.strip(b" \t")]
