"""Recursive-descent parser for DQDL documents.

Hand-written (no parser generator dependency) so errors can say precisely what was expected at which
line and column; the grammar follows the public DQDL definition (awslabs/dqdl).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dq_platform.dq.dqdl.ast import (
    AnyRule,
    BinOp,
    Call,
    CompositeRule,
    Condition,
    Document,
    DQDLSyntaxError,
    Duration,
    Keyword,
    Now,
    Number,
    Pos,
    Rule,
    Size,
    String,
    Value,
    VarRef,
)
from dq_platform.dq.dqdl.lexer import Token, tokenize

_COMPARISON_OPS = ("=", "!=", ">", ">=", "<", "<=")
_KEYWORD_VALUES = {"null": "NULL", "empty": "EMPTY", "whitespaces_only": "WHITESPACES_ONLY"}
_DURATION_UNITS = {"day": "days", "days": "days", "hour": "hours", "hours": "hours"}
_DURATION_UNITS |= {"minute": "minutes", "minutes": "minutes"}
_SIZE_UNITS = ("B", "KB", "MB", "GB", "TB")
# words that end a rule's parameter list: a bare identifier parameter can never be one of these
_RESERVED = {"where", "with", "labels", "between", "not", "in", "matches", "and", "or", "of"}
_SECTIONS = ("Metadata", "DataSources", "Sources", "Rules", "Analyzers", "DefaultLabels")
_COLLAPSE = re.compile(r"\s*\n\s*")


@dataclass
class _Clauses:
    """What follows a rule's parameters and condition; `segments` are the source spans of its text
    (labels are left out of the rule's name)."""

    seg_start: int
    segments: list[tuple[int, int]] = field(default_factory=list)
    where: str | None = None
    threshold: Condition | None = None
    tags: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.i = 0

    # ---- token helpers -------------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def peek(self, k: int = 1) -> Token:
        return self.tokens[min(self.i + k, len(self.tokens) - 1)]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "EOF":
            self.i += 1
        return tok

    def error(self, expected: str, tok: Token | None = None) -> DQDLSyntaxError:
        tok = tok or self.tok
        return DQDLSyntaxError(f"expected {expected}, found {tok.describe()}", tok.line, tok.column)

    def is_punct(self, ch: str, tok: Token | None = None) -> bool:
        tok = tok or self.tok
        return tok.kind == "PUNCT" and tok.text == ch

    def is_op(self, op: str, tok: Token | None = None) -> bool:
        tok = tok or self.tok
        return tok.kind == "OP" and tok.text == op

    def is_word(self, *words: str, tok: Token | None = None) -> bool:
        tok = tok or self.tok
        return tok.kind == "IDENT" and tok.text.lower() in words

    def expect_punct(self, ch: str, expected: str | None = None) -> Token:
        if not self.is_punct(ch):
            raise self.error(expected or f"'{ch}'")
        return self.advance()

    def expect_op(self, op: str, expected: str | None = None) -> Token:
        if not self.is_op(op):
            raise self.error(expected or f"'{op}'")
        return self.advance()

    def expect_string(self, expected: str) -> Token:
        if self.tok.kind != "STRING":
            raise self.error(expected)
        return self.advance()

    def pos(self, tok: Token | None = None) -> Pos:
        tok = tok or self.tok
        return Pos(tok.line, tok.column)

    # ---- document --------------------------------------------------------------------------------
    def document(self) -> Document:
        doc = Document(rules=[])
        seen_rules = False
        while self.tok.kind != "EOF":
            tok = self.tok
            if tok.kind != "IDENT":
                raise self.error("a section (Rules = [...], Metadata = {...}, ...) or a variable declaration")
            name = tok.text
            self.advance()
            self.expect_op("=", f"'=' after '{name}'")
            if name == "Rules":
                if seen_rules:
                    raise DQDLSyntaxError("duplicate 'Rules' section", tok.line, tok.column)
                seen_rules = True
                doc.rules = self.rule_list()
            elif name == "Analyzers":
                doc.analyzers = self.analyzer_list()
            elif name == "DefaultLabels":
                doc.default_labels = self.label_list()
            elif name == "Metadata":
                doc.metadata = self.dictionary()
            elif name in ("DataSources", "Sources"):
                doc.data_sources = self.dictionary()
            elif name.lower() == "rules":
                raise DQDLSyntaxError("the rules section must be spelled 'Rules'", tok.line, tok.column)
            else:
                if name in doc.variables:
                    raise DQDLSyntaxError(f"variable '{name}' is declared twice", tok.line, tok.column)
                doc.variables[name] = self.variable_value()
        if not seen_rules:
            raise self.error("a 'Rules = [ ... ]' section")
        return doc

    def analyzer_list(self) -> list[Rule]:
        self.expect_punct("[", "'[' after 'Analyzers ='")
        out: list[Rule] = []
        if self.is_punct("]"):
            self.advance()
            return out
        while True:
            out.append(self.leaf_rule(analyzer=True))
            if self.is_punct(","):
                self.advance()
                continue
            self.expect_punct("]", "',' between analyzers or ']' to close the list")
            return out

    def rule_list(self) -> list[AnyRule]:
        self.expect_punct("[", "'[' after 'Rules ='")
        rules: list[AnyRule] = []
        if self.is_punct("]"):
            self.advance()
            return rules
        while True:
            rules.append(self.rule())
            if self.is_punct(","):
                self.advance()
                continue
            if self.is_punct("]"):
                self.advance()
                return rules
            if self.tok.kind == "IDENT" or self.is_punct("("):
                raise self.error("',' or ']' after the rule (a ',' missing between two rules, or a misspelt word?)")
            raise self.error("',' between rules or ']' to close the rules list")

    def variable_value(self) -> str | list[str]:
        if self.tok.kind == "STRING":
            return self.advance().text
        if self.is_punct("["):
            self.advance()
            values: list[str] = []
            while True:
                if self.tok.kind in ("STRING", "NUMBER"):
                    values.append(self.advance().text)
                else:
                    raise self.error("a quoted string in the variable's list")
                if self.is_punct(","):
                    self.advance()
                    continue
                self.expect_punct("]", "',' or ']' in the variable's list")
                return values
        raise self.error("a quoted string or a [list] as the variable's value")

    def dictionary(self) -> dict[str, str | list[str]]:
        self.expect_punct("{", "'{' to open the dictionary")
        out: dict[str, str | list[str]] = {}
        if self.is_punct("}"):
            self.advance()
            return out
        while True:
            key = self.expect_string("a quoted key").text
            self.expect_punct(":", "':' after the key")
            if self.tok.kind == "STRING":
                out[key] = self.advance().text
            elif self.is_punct("["):
                self.advance()
                items: list[str] = []
                while True:
                    items.append(self.expect_string("a quoted string").text)
                    if self.is_punct(","):
                        self.advance()
                        continue
                    self.expect_punct("]", "',' or ']'")
                    break
                out[key] = items
            else:
                raise self.error("a quoted string or a list of strings")
            if self.is_punct(","):
                self.advance()
                continue
            self.expect_punct("}", "',' or '}' in the dictionary")
            return out

    def label_list(self) -> dict[str, str]:
        self.expect_punct("[", "'[' to open the labels")
        labels: dict[str, str] = {}
        if self.is_punct("]"):
            self.advance()
            return labels
        while True:
            key = self.expect_string('a quoted label key (labels=["key"="value"])').text
            self.expect_op("=", "'=' between the label key and value")
            labels[key] = self.expect_string("a quoted label value").text
            if self.is_punct(","):
                self.advance()
                continue
            self.expect_punct("]", "',' or ']' in the labels")
            return labels

    # ---- rules ---------------------------------------------------------------------------------
    def rule(self) -> AnyRule:
        start = self.tok
        if not self.is_punct("("):
            return self.leaf_rule()
        children: list[AnyRule] = [self.paren_rule()]
        op: str | None = None
        while self.is_word("and", "or"):
            word = self.advance().text.lower()
            if op is not None and word != op:
                raise DQDLSyntaxError(
                    f"cannot mix 'and' and 'or' at one level: wrap the '{op}' part in parentheses",
                    start.line,
                    start.column,
                )
            op = word
            if not self.is_punct("("):
                raise self.error(f"'(' to start the rule after '{word}' (each operand needs parentheses)")
            children.append(self.paren_rule())
        if op is None:
            return children[0]
        end = self.tokens[self.i - 1].end
        labels = self.label_clause_opt()
        return CompositeRule(op, children, labels, self.text_of(start.start, end), self.pos(start))

    def paren_rule(self) -> AnyRule:
        self.expect_punct("(")
        inner = self.rule()
        self.expect_punct(")", "')' to close the rule")
        return inner

    def label_clause_opt(self) -> dict[str, str]:
        if self.is_word("labels"):
            self.advance()
            self.expect_op("=", "'=' after 'labels'")
            return self.label_list()
        return {}

    def leaf_rule(self, analyzer: bool = False) -> Rule:
        start = self.tok
        if start.kind != "IDENT" or start.text.lower() in _RESERVED:
            raise self.error("a rule type (e.g. IsComplete, ColumnValues, RowCount)")
        self.advance()
        params = self._rule_params(start)
        condition = self.condition() if not analyzer and self._starts_condition() else None
        clauses = _Clauses(seg_start=start.start)
        self._rule_clauses(clauses)
        segments = clauses.segments
        end = self.tokens[self.i - 1].end
        if clauses.seg_start < end and self.tokens[self.i - 1].start >= clauses.seg_start:
            segments.append((clauses.seg_start, end))
        text = " ".join(self.text_of(a, b) for a, b in segments if b > a)
        return Rule(
            start.text,
            params,
            condition,
            clauses.where,
            clauses.threshold,
            clauses.tags,
            clauses.labels,
            text,
            self.pos(start),
        )

    def _rule_params(self, start: Token) -> list[str]:
        """The rule's parameters: strings, variables, a leading number, bare columns (`of`/`and` between)."""
        params: list[str] = []
        after_connector = False
        while True:
            if self.is_word("of", "and") and self._param_follows():
                self.advance()
                after_connector = True
                continue
            connected, after_connector = after_connector, False
            param = self._param(start, params, connected)
            if param is None:
                return params
            params.append(param)

    def _param(self, start: Token, params: list[str], connected: bool) -> str | None:
        tok = self.tok
        if tok.kind == "STRING":
            return self.advance().text
        if tok.kind == "VAR":
            return "$" + self.advance().text
        if tok.kind == "NUMBER" and not params and self._number_is_param():
            return self.advance().text
        if (
            tok.kind == "IDENT"
            and tok.text.lower() not in _RESERVED
            and not self._starts_call()
            and self._bare_param_allowed(start, params, connected)
        ):
            if tok.text.lower() in _KEYWORD_VALUES:
                raise self.error("a column name or a condition")
            return self.advance().text
        return None

    def _rule_clauses(self, c: _Clauses) -> None:
        """`where "..."`, `labels=[...]` and `with threshold ...` / `with tag = "..."`, in any order."""
        while True:
            if self.is_word("where"):
                self.advance()
                c.where = self.expect_string("a quoted SQL condition after 'where' (where \"x > 0\")").text
            elif self.is_word("labels"):
                c.segments.append((c.seg_start, self.tokens[self.i - 1].end))
                c.labels = self.label_clause_opt()
                c.seg_start = self.tok.start
            elif self.is_word("with"):
                self._with_clause(c)
            else:
                return

    def _with_clause(self, c: _Clauses) -> None:
        self.advance()
        if self.tok.kind != "IDENT":
            raise self.error("a tag after 'with' (e.g. 'with threshold > 0.9')")
        tag = self.advance().text
        if tag == "threshold":
            if not self._starts_condition():
                raise self.error("a numeric condition after 'with threshold'")
            c.threshold = self.condition()
        else:
            self.expect_op("=", f"'=' after 'with {tag}'")
            c.tags[tag] = self.expect_string(f"a quoted value for '{tag}'").text

    def _bare_param_allowed(self, start: Token, params: list[str], connected: bool) -> bool:
        # An unquoted column is only read right after 'of'/'and', or as the first parameter on the rule's
        # own line: otherwise a missing ',' would make the next rule's type a parameter of this one.
        return connected or (not params and self.tok.line == start.line)

    def _param_follows(self) -> bool:
        nxt = self.peek()
        return nxt.kind in ("STRING", "VAR") or (
            nxt.kind == "IDENT" and nxt.text.lower() not in _RESERVED and nxt.text.lower() not in _KEYWORD_VALUES
        )

    def _number_is_param(self) -> bool:
        # `FileMatch 5 ...` style numeric parameters are rare; a number right after the rule type followed
        # by something other than an operator/unit is treated as a parameter.
        nxt = self.peek()
        return not (nxt.kind == "IDENT" and (nxt.text.lower() in _DURATION_UNITS or nxt.text in _SIZE_UNITS))

    def _starts_call(self) -> bool:
        return self.tok.kind == "IDENT" and self.is_punct("(", self.peek())

    def _starts_condition(self) -> bool:
        tok = self.tok
        if tok.kind == "OP" and tok.text in _COMPARISON_OPS:
            return True
        return self.is_word("between", "in", "matches") or (
            self.is_word("not") and self.is_word("between", "in", "matches", tok=self.peek())
        )

    def text_of(self, start: int, end: int) -> str:
        return _COLLAPSE.sub(" ", self.source[start:end]).strip()

    # ---- conditions ----------------------------------------------------------------------------
    def condition(self) -> Condition:
        start = self.tok
        negate = False
        if self.is_word("not"):
            self.advance()
            negate = True
        prefix = "not " if negate else ""
        if self.is_word("between"):
            self.advance()
            low = self.expr()
            if not self.is_word("and"):
                raise self.error("'and' in 'between X and Y'")
            self.advance()
            high = self.expr()
            return Condition(prefix + "between", (low, high), self.pos(start))
        if self.is_word("in"):
            self.advance()
            if self.tok.kind == "VAR":
                return Condition(prefix + "in", (VarRef(self.advance().text),), self.pos(start))
            return Condition(prefix + "in", tuple(self.array()), self.pos(start))
        if self.is_word("matches"):
            self.advance()
            pattern = self.expect_string("a quoted regular expression after 'matches'").text
            return Condition(prefix + "matches", (String(pattern),), self.pos(start))
        if negate:
            raise self.error("'between', 'in' or 'matches' after 'not'")
        if self.tok.kind == "OP" and self.tok.text in _COMPARISON_OPS:
            op = self.advance().text
            return Condition(op, (self.expr(),), self.pos(start))
        raise self.error("a condition (=, !=, >, >=, <, <=, between, in, matches)")

    def array(self) -> list[Value]:
        self.expect_punct("[", "'[' to open the list of values")
        items: list[Value] = []
        if self.is_punct("]"):
            self.advance()
            return items
        while True:
            items.append(self.expr())
            if self.is_punct(","):
                self.advance()
                continue
            self.expect_punct("]", "',' or ']' in the list of values")
            return items

    def expr(self) -> Value:
        left = self.term()
        while self.tok.kind == "OP" and self.tok.text in "+-":
            op = self.advance().text
            left = BinOp(op, left, self.term())
        return left

    def term(self) -> Value:
        left = self.unary()
        while self.tok.kind == "OP" and self.tok.text in "*/":
            op = self.advance().text
            left = BinOp(op, left, self.unary())
        return left

    def unary(self) -> Value:
        if self.is_op("-"):
            self.advance()
            inner = self.unary()
            if isinstance(inner, Number):
                return Number(-inner.value)
            return BinOp("-", Number(0.0), inner)
        return self.primary()

    def primary(self) -> Value:
        tok = self.tok
        if tok.kind == "NUMBER":
            self.advance()
            amount = float(tok.text)
            if self.tok.kind == "IDENT" and self.tok.text.lower() in _DURATION_UNITS:
                return Duration(amount, _DURATION_UNITS[self.advance().text.lower()])
            if self.tok.kind == "IDENT" and self.tok.text in _SIZE_UNITS:
                return Size(amount, self.advance().text)
            return Number(amount)
        if tok.kind == "STRING":
            return String(self.advance().text)
        if tok.kind == "VAR":
            return VarRef(self.advance().text)
        if tok.kind == "IDENT" and tok.text.lower() in _KEYWORD_VALUES:
            self.advance()
            return Keyword(_KEYWORD_VALUES[tok.text.lower()])
        if tok.kind == "IDENT" and self.is_punct("(", self.peek()):
            name = self.advance().text
            self.advance()  # (
            args: list[Value] = []
            if not self.is_punct(")"):
                while True:
                    args.append(self.expr())
                    if self.is_punct(","):
                        self.advance()
                        continue
                    break
            self.expect_punct(")", f"')' to close {name}(...)")
            if name == "now" and not args:
                return Now()
            return Call(name, tuple(args))
        if self.is_punct("("):
            self.advance()
            inner = self.expr()
            self.expect_punct(")", "')' to close the expression")
            return inner
        raise self.error("a value (number, quoted string, NULL, now(), duration)")


def parse(source: str) -> Document:
    """Parse a DQDL document; raises DQDLSyntaxError naming the line, column and what was expected."""
    return _Parser(source).document()
