"""The segment language's parser: query text in, a :mod:`patron.segments.ast` tree out.
``parse("country = 'US' AND age >= 30")`` gives ``And((Comparison(...), Comparison(...)))``.

Design. The grammar is LALR(1) (Lark, ``parser="lalr"``) with Lark's basic lexer:

* LALR fails at the first token that cannot continue the query, and its parser can
  say exactly which terminals would have continued it (``InteractiveParser.accepts``),
  so every syntax error names the token as typed, its line and column, and what was
  expected. Each terminal has a description in words (``_WORDS``); groups of terminals
  that together mean "a value", "a condition" or "an operator" are named once, so a
  marketer reads "expected a value", never ``__ANON_3`` or ``RPAR``.
* The basic lexer (not the contextual one) makes every keyword reserved everywhere,
  whatever the parser state: ``count`` is always the option, and an attribute of that
  name is written `` `count` ``. A name means the same thing wherever it appears.
* The grammar is deliberately wider than the language: any option after any
  behavioral event, any condition inside ``where``, any ``performed`` as a funnel step.
  :class:`_Builder` then rejects what does not fit (a repeated option, ``count`` with
  ``first``, ``performed`` inside ``where``) with a message that says why, which a
  grammar error ("unexpected 'performed'") could not.

One Lark parser is built on first use and shared; a parse keeps no state in it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedToken, VisitError
from lark.tree import Meta

from patron.segments import ast
from patron.segments.exceptions import SegmentQueryError

__all__ = ["parse"]

_GRAMMAR = r"""
?start: condition

?condition: or_expr
?or_expr: and_expr (_OR and_expr)*
?and_expr: not_expr (_AND not_expr)*
?not_expr: NOT not_expr               -> negation
         | atom
?atom: comparison | contains | matches | between | in_list | is_null
     | performed | funnel | stopped | restarted | in_segment
     | _LPAR condition _RPAR

comparison: attribute cmp_op value
contains: attribute NOT? CONTAINS value
matches: attribute NOT? MATCHES STRING
between: attribute NOT? BETWEEN value _AND value
in_list: attribute NOT? IN _LPAR value (_COMMA value)* _RPAR
is_null: attribute IS NOT? NULL

attribute: NAME
         | ANNIVERSARY _LPAR NAME _RPAR
cmp_op: EQ | NE | LTGT | GT | GE | LT | LE
value: STRING | NUMBER | DATE | RELDATE | AGO | TODAY | YESTERDAY | TOMORROW | NOW
     | TRUE | FALSE | NULL
duration: DURATION

performed: FIRST? PERFORMED _LPAR STRING (_COMMA (count_option | within_option | where_option))* _RPAR
stopped: STOPPED PERFORMING _LPAR STRING (_COMMA (for_option | where_option))* _RPAR
restarted: RESTARTED PERFORMING _LPAR STRING (_COMMA (after_option | within_option | where_option))* _RPAR
funnel: performed (_THEN performed)+ (WITHIN duration)?
in_segment: IN_SEGMENT _LPAR STRING _RPAR

count_option: COUNT cmp_op NUMBER
within_option: WITHIN duration
where_option: WHERE condition
for_option: FOR duration
after_option: AFTER duration

_AND: "and"i
_OR: "or"i
NOT: "not"i
IN: "in"i
BETWEEN: "between"i
IS: "is"i
NULL: "null"i
CONTAINS: "contains"i
MATCHES: "matches"i
TRUE: "true"i
FALSE: "false"i
TODAY: "today"i
YESTERDAY: "yesterday"i
TOMORROW: "tomorrow"i
NOW: "now"i
PERFORMED: "performed"i
FIRST: "first"i
STOPPED: "stopped"i
RESTARTED: "restarted"i
PERFORMING: "performing"i
_THEN: "then"i
WITHIN: "within"i
FOR: "for"i
AFTER: "after"i
WHERE: "where"i
COUNT: "count"i
IN_SEGMENT: "in_segment"i
ANNIVERSARY: "anniversary"i

EQ: "="
NE: "!="
LTGT: "<>"
GT: ">"
GE: ">="
LT: "<"
LE: "<="
_LPAR: "("
_RPAR: ")"
_COMMA: ","

// Keywords keep the default priority 0, like NAME, so that Lark lexes a word as NAME
// and then retypes it when it is a keyword. The terminals below must win over NUMBER
// (2024-05-01, -30d and 30_days_ago all start like a number), hence their priorities.
_NAME_PART: /[A-Za-z_][A-Za-z0-9_]*/ | /`[A-Za-z_][A-Za-z0-9_]*`/
NAME: _NAME_PART ("." _NAME_PART)*
STRING: /'(?:[^'\\\n]|\\.|'')*'/ | /"(?:[^"\\\n]|\\.|"")*"/
DATE.4: /\d{4}-\d{1,2}-\d{1,2}(?:[Tt]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}:?\d{2})?)?/
AGO.4: /\d+_(?:days?|weeks?|months?|years?)_ago(?![A-Za-z0-9_])/i
RELDATE.3: /[+-]\d+[dwmyDWMY](?![A-Za-z0-9_])/
DURATION.3: /\d+[hdwmyHDWMY](?![A-Za-z0-9_])/
NUMBER.2: /-?(?:\d+(?:\.\d+)?|\.\d+)(?:[eE][+-]?\d+)?/

%ignore /\s+/
"""


@cache
def _parser() -> Lark:
    # Built once, on first use: compiling the grammar's LALR tables takes about 0.15 s.
    return Lark(_GRAMMAR, parser="lalr", lexer="basic", propagate_positions=True, maybe_placeholders=False)


def parse(text: str) -> ast.Condition:
    """Parse a segment query into its syntax tree.

    Args:
        text: the query as typed, on one line or several.

    Returns:
        The condition (a node of :mod:`patron.segments.ast`).

    Raises:
        SegmentQueryError: for every query that is not in the language; the message
            names the token, its line and column and what was expected.

    Examples:
        ``parse("age >= 30")`` is ``Comparison(Attribute("age"), ">=", Literal(30))``;
        ``parse("age >")`` raises "column 6: the query ends after '>'; expected a value
        (a number, 'text', a date such as 2024-05-01 or -30d)".
    """
    if not isinstance(text, str):
        raise SegmentQueryError(f"the query must be text, not {type(text).__name__}")
    if not text.strip():
        raise SegmentQueryError("the query is empty")
    tree = _parse_tree(text)
    try:
        result: ast.Condition = _Builder(text).transform(tree)
    except VisitError as e:
        if isinstance(e.orig_exc, SegmentQueryError):
            raise e.orig_exc from None
        if isinstance(e.orig_exc, RecursionError):
            raise _too_deep() from None
        raise
    except RecursionError:
        raise _too_deep() from None
    return result


def _too_deep() -> SegmentQueryError:
    return SegmentQueryError("the query nests too deeply; use fewer parentheses or NOTs")


# -- syntax errors ---------------------------------------------------------------------


def _parse_tree(text: str) -> Any:
    parser = _parser()
    interactive = parser.parse_interactive(text)
    seen: list[Token] = []
    try:
        # iter_parse yields each token, then feeds it to the parser on the next step: a
        # feed that fails raises with the last token seen, a lexer failure after it.
        for token in interactive.iter_parse():
            seen.append(token)
        return interactive.feed_eof(seen[-1] if seen else None)
    except UnexpectedCharacters as e:
        raise _character_error(text, seen, e) from None
    except UnexpectedToken as e:
        if e.token.type == "$END":
            raise _end_error(text, seen) from None
        raise _token_error(text, seen[:-1], seen[-1]) from None


def _expected(text: str, fed: list[Token]) -> set[str]:
    """The terminals that could follow ``fed``: replayed on a fresh parser, because the
    failed one may already have reduced on the bad token (LALR merges lookaheads)."""
    interactive = _parser().parse_interactive(text)
    for token in fed:
        interactive.feed_token(token)
    return set(interactive.accepts())


_VALUE_WORDS = "a value (a number, 'text', a date such as 2024-05-01 or -30d)"
_OPERATOR_WORDS = "an operator (=, !=, >, >=, <, <=, IN, BETWEEN, CONTAINS, MATCHES, IS NULL)"
_CONDITION_WORDS = "a condition (such as country = 'US' or performed('Order Completed'))"
_DURATION_RULE = (
    "a duration is a positive number of hours (h), days (d), weeks (w), months (m) or years (y), like 7d"
)

_DATE_TERMINALS = frozenset({"DATE", "RELDATE", "AGO", "TODAY", "YESTERDAY", "TOMORROW", "NOW"})
_VALUE_TERMINALS = _DATE_TERMINALS | {"STRING", "NUMBER", "TRUE", "FALSE", "NULL"}
_CONDITION_TERMINALS = frozenset(
    {"NAME", "ANNIVERSARY", "NOT", "PERFORMED", "FIRST", "STOPPED", "RESTARTED", "IN_SEGMENT", "_LPAR"}
)
_COMPARE_TERMINALS = frozenset({"EQ", "NE", "LTGT", "GT", "GE", "LT", "LE"})
_OPERATOR_TERMINALS = _COMPARE_TERMINALS | {"IN", "BETWEEN", "CONTAINS", "MATCHES", "IS", "NOT"}
# In the order a message lists them: "count, within or where", "after, within or where".
_OPTIONS = {"COUNT": "count", "FOR": "for", "AFTER": "after", "WITHIN": "within", "WHERE": "where"}
_BEHAVIORAL_TERMINALS = frozenset({"PERFORMED", "PERFORMING", "IN_SEGMENT"})
# Words no attribute is plausibly called: no "write it in backquotes" hint for these.
_NOT_NAMES = frozenset({"NAME", "_AND", "_OR", "NOT", "IN", "IS", "BETWEEN", "CONTAINS", "MATCHES", "_THEN"})

# Every terminal of the grammar, in words, in the order an "expected" list shows them.
_WORDS = {
    "NAME": "an attribute name, such as birthday",
    "NOT": "NOT",
    "ANNIVERSARY": "anniversary",
    "PERFORMED": "performed",
    "FIRST": "first",
    "STOPPED": "stopped",
    "RESTARTED": "restarted",
    "IN_SEGMENT": "in_segment",
    "PERFORMING": "performing",
    "EQ": "=",
    "NE": "!=",
    "LTGT": "<>",
    "GT": ">",
    "GE": ">=",
    "LT": "<",
    "LE": "<=",
    "IN": "IN",
    "BETWEEN": "BETWEEN",
    "CONTAINS": "CONTAINS",
    "MATCHES": "MATCHES",
    "IS": "IS",
    "NULL": "NULL",
    "STRING": "text in quotes, such as 'shoes'",
    "NUMBER": "a whole number, such as 3",
    "DATE": "a date such as 2024-05-01",
    "RELDATE": "a relative date such as -30d",
    "AGO": "a relative date such as 30_days_ago",
    "TODAY": "today",
    "YESTERDAY": "yesterday",
    "TOMORROW": "tomorrow",
    "NOW": "now",
    "TRUE": "true",
    "FALSE": "false",
    "DURATION": "a duration such as 12h, 7d, 8w, 6m or 1y",
    **_OPTIONS,
    "_AND": "AND",
    "_OR": "OR",
    "_THEN": "then",
    "_LPAR": "'('",
    "_COMMA": "','",
    "_RPAR": "')'",
    "$END": "the end of the query",
}

_UNIT_WORDS = {"d": "day", "w": "week", "m": "month", "y": "year"}


def _shown(token: Token) -> str:
    """The token as typed, quoted for a message (text already carries its quotes)."""
    value = str(token)
    if len(value) > 40:
        value = value[:37] + "..."
    return value if token.type == "STRING" else f"'{value}'"


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _describe(expected: set[str], fed: list[Token]) -> str:
    """``expected`` in words: groups first (a condition, a value, an operator), then the
    rest in ``_WORDS`` order, at most six."""
    prev = fed[-1].type if fed else None
    before = fed[-2].type if len(fed) > 1 else None
    left = set(expected)
    words: list[str] = []
    if {"NAME", "PERFORMED"} <= left:
        words.append(_CONDITION_WORDS)
        left -= _CONDITION_TERMINALS
    if {"STRING", "NUMBER"} <= left:
        words.append(_VALUE_WORDS)
        left -= _VALUE_TERMINALS
    if {"EQ", "IN"} <= left:
        words.append(_OPERATOR_WORDS)
        left -= _OPERATOR_TERMINALS
    if left >= _COMPARE_TERMINALS:  # after count
        words.append("a comparison (=, !=, >, >=, <, <=)")
        left -= _COMPARE_TERMINALS
    for name, description in _WORDS.items():
        if name not in left:
            continue
        if name == "STRING" and prev == "MATCHES":
            description = "a pattern in quotes, such as '^VIP'"
        elif name == "STRING" and prev == "_LPAR" and before in _BEHAVIORAL_TERMINALS:
            description = (
                "the segment name in quotes, such as 'vip'"
                if before == "IN_SEGMENT"
                else "the event name in quotes, such as 'Product Viewed'"
            )
        elif name == "_LPAR" and prev == "IN":
            description = "'(' and a list of values, such as IN ('a', 'b')"
        elif name == "_LPAR" and prev in _BEHAVIORAL_TERMINALS:
            description = "'(' and the event name, such as performed('Order Completed')"
        words.append(description)
    if not words:  # cannot happen with the grammar above; never show terminal names
        words.append("something else")
    return _join(list(dict.fromkeys(words))[:6])


def _unclosed_paren(fed: list[Token]) -> Token | None:
    opened: list[Token] = []
    for token in fed:
        if token.type == "_LPAR":
            opened.append(token)
        elif token.type == "_RPAR" and opened:
            opened.pop()
    return opened[-1] if opened else None


def _place(text: str, line: int, column: int) -> str:
    return f"line {line}, column {column}" if "\n" in text.strip() else f"column {column}"


def _end_error(text: str, fed: list[Token]) -> SegmentQueryError:
    """The error for a query that stops too early: at the column after its last token."""
    expected = _expected(text, fed)
    prev = fed[-1] if fed else None
    line = prev.end_line if prev is not None and prev.end_line is not None else 1
    column = prev.end_column if prev is not None and prev.end_column is not None else 1
    head = f"the query ends after {_shown(prev)}" if prev is not None else "the query ends"
    paren = _unclosed_paren(fed)
    if paren is not None and "_RPAR" in expected:
        head = f"missing ')' to close the '(' at {_place(text, paren.line or 1, paren.column or 1)}; " + head
    options = [word for name, word in _OPTIONS.items() if name in expected]
    if options and len(options) == len(expected):
        return SegmentQueryError(f"{head}; expected {_join(options)}", line=line, column=column)
    return SegmentQueryError(f"{head}; expected {_describe(expected, fed)}", line=line, column=column)


def _token_error(text: str, fed: list[Token], bad: Token) -> SegmentQueryError:
    """The error for ``bad`` arriving after ``fed``: the specific cases marketers run
    into first, then "unexpected X; expected Y" with hints."""
    expected = _expected(text, fed)
    prev = fed[-1] if fed else None

    def error(message: str) -> SegmentQueryError:
        return SegmentQueryError(message, line=bad.line, column=bad.column, token=str(bad))

    before = fed[-2].type if len(fed) > 1 else None
    if bad.type == "DURATION" and str(bad)[-1] in "hH" and "NUMBER" in expected and "STRING" in expected:
        return error(f"{_shown(bad)}: dates count in days (d), weeks (w), months (m) or years (y), not hours")
    if bad.type == "DURATION" and "NUMBER" in expected and "STRING" in expected:
        amount, unit = str(bad)[:-1], _UNIT_WORDS[str(bad)[-1].lower()]
        units = unit if amount == "1" else unit + "s"
        return error(
            f"{_shown(bad)} needs a sign: "
            f"write -{bad} for {amount} {units} ago or +{bad} for {amount} {units} ahead"
        )
    if bad.type == "RELDATE" and "DURATION" in expected:
        return error(f"{_shown(bad)} is not a duration: {_DURATION_RULE}")
    if (
        expected == {"STRING"}
        and prev is not None
        and prev.type == "_LPAR"
        and before in _BEHAVIORAL_TERMINALS
    ):
        # performed(Product Viewed): suggest the call with what they typed, quoted.
        what = "segment" if before == "IN_SEGMENT" else "event"
        call = text[fed[-3].start_pos : fed[-2].end_pos] if before == "PERFORMING" else str(fed[-2])
        typed = re.match(r"[^,)'\"]*", text[bad.start_pos or 0 :])
        name = typed.group().strip() if typed and typed.group().strip() else "Order Completed"
        return error(f"the {what} name must be a quoted string: write {call}('{name}'), not {_shown(bad)}")
    options = [word for name, word in _OPTIONS.items() if name in expected]
    if options and len(options) == len(expected) and (bad.type == "NAME" or str(bad).isidentifier()):
        adjective = "unknown" if bad.type not in _OPTIONS else "misplaced"
        return error(f"{adjective} option {_shown(bad)}; expected {_join(options)}")
    if bad.type == "_RPAR" and prev is not None and prev.type == "_LPAR" and before == "IN":
        return error("IN needs at least one value, like IN ('a', 'b')")

    after = ""
    if {"EQ", "IN"} <= expected and prev is not None:
        # The attribute is a NAME or anniversary ( NAME ): four tokens back.
        start = prev if prev.type == "NAME" or len(fed) < 4 else fed[-4]
        after = f" after the attribute '{text[start.start_pos : prev.end_pos]}'"
    hints = []
    if bad.type not in _NOT_NAMES and str(bad).isidentifier() and "NAME" in expected:
        hints.append(f"{_shown(bad)} is a keyword: write `{bad}` in backquotes for a name")
    if bad.type == "NAME" and "STRING" in expected:
        hints.append(f"text goes in quotes: '{bad}'")
    if bad.type == "NAME" and prev is not None and prev.type == "NUMBER" and prev.end_pos == bad.start_pos:
        n = str(prev).lstrip("-")
        hints.append(
            f"relative dates take one letter (-{n}d, -{n}w, -{n}m, -{n}y), durations also hours ({n}d, {n}h)"
        )
    if bad.type == "WITHIN" and prev is not None and prev.type == "_RPAR" and "_THEN" in expected:
        hints.append("put within inside the parentheses, like performed('Order Completed', within 7d)")
    if bad.type == "EQ" and prev is not None and prev.type == "EQ":
        hints.append("compare with a single =")
    if bad.type == "_RPAR" and _unclosed_paren(fed) is None:
        hints.append("there is no '(' for it to close")
    hint = "".join(f"; {h}" for h in hints)
    return error(f"unexpected {_shown(bad)}{after}; expected {_describe(expected, fed)}{hint}")


def _character_error(text: str, fed: list[Token], e: UnexpectedCharacters) -> SegmentQueryError:
    char = e.char

    def error(message: str) -> SegmentQueryError:
        return SegmentQueryError(message, line=e.line, column=e.column, token=char)

    if char in "'\"":
        return error(
            f"the text that starts here with {char} is never closed; add the closing {char} "
            f"(to put a {char} inside the text, write \\{char} or {char}{char})"
        )
    if char == "`":
        return error("a name in backquotes is letters, digits and _ closed by a backquote, like `count`")
    hint = "; write AND or OR" if char in "&|" else ""
    return error(f"unexpected character '{char}'; expected {_describe(_expected(text, fed), fed)}{hint}")


# -- from the parse tree to the syntax tree --------------------------------------------


@dataclass(frozen=True)
class _Option:
    """One option of a behavioral condition, before it is checked against the others."""

    name: str
    token: Token
    value: Any


_COMPARISONS = {"EQ": "=", "NE": "!=", "LTGT": "!=", "GT": ">", "GE": ">=", "LT": "<", "LE": "<="}
_RELATIVE_WORDS = {"TODAY": 0, "YESTERDAY": -1, "TOMORROW": 1}
_STRING_ESCAPE = re.compile(r"\\([\\'\"])|('')|(\"\")")


def _at(token: Token | Meta) -> ast.Position:
    return ast.Position(line=token.line or 1, column=token.column or 1)


def _is_token(child: Any, kind: str) -> bool:
    return isinstance(child, Token) and child.type == kind


@v_args(meta=True)
class _Builder(Transformer[Token, ast.Condition]):
    """Turns Lark's parse tree into ast nodes; the checks the grammar leaves open."""

    def __init__(self, text: str) -> None:
        super().__init__(visit_tokens=False)
        self._text = text

    def _error(self, message: str, token: Token) -> SegmentQueryError:
        return SegmentQueryError(message, line=token.line, column=token.column, token=str(token))

    # conditions

    def or_expr(self, meta: Meta, items: list[ast.Condition]) -> ast.Or:
        flat = [part for item in items for part in (item.items if isinstance(item, ast.Or) else (item,))]
        return ast.Or(tuple(flat), position=_at(meta))

    def and_expr(self, meta: Meta, items: list[ast.Condition]) -> ast.And:
        flat = [part for item in items for part in (item.items if isinstance(item, ast.And) else (item,))]
        return ast.And(tuple(flat), position=_at(meta))

    def negation(self, meta: Meta, children: list[Any]) -> ast.Not:
        return ast.Not(children[1], position=_at(meta))

    def comparison(self, meta: Meta, children: list[Any]) -> ast.Comparison:
        attribute, op, value = children
        return ast.Comparison(attribute, op, value, position=_at(meta))

    def contains(self, meta: Meta, children: list[Any]) -> ast.Comparison:
        op = "NOT CONTAINS" if _is_token(children[1], "NOT") else "CONTAINS"
        return ast.Comparison(children[0], op, children[-1], position=_at(meta))

    def matches(self, meta: Meta, children: list[Any]) -> ast.Comparison:
        op = "NOT MATCHES" if _is_token(children[1], "NOT") else "MATCHES"
        token = children[-1]
        pattern = self._string(token)
        try:
            re.compile(pattern)
        except re.error as e:
            raise self._error(f"{_shown(token)} is not a valid regular expression: {e.msg}", token) from None
        return ast.Comparison(children[0], op, ast.Literal(pattern, position=_at(token)), position=_at(meta))

    def between(self, meta: Meta, children: list[Any]) -> ast.Between:
        negated = _is_token(children[1], "NOT")
        return ast.Between(children[0], children[-2], children[-1], negated=negated, position=_at(meta))

    def in_list(self, meta: Meta, children: list[Any]) -> ast.InList:
        negated = _is_token(children[1], "NOT")
        values = tuple(child for child in children if isinstance(child, ast.Literal | ast.DateValue))
        return ast.InList(children[0], values, negated=negated, position=_at(meta))

    def is_null(self, meta: Meta, children: list[Any]) -> ast.IsNull:
        return ast.IsNull(children[0], negated=_is_token(children[2], "NOT"), position=_at(meta))

    def attribute(self, meta: Meta, children: list[Token]) -> ast.Attribute:
        # Backquotes only protect a keyword from the lexer: `count` is the name count.
        name = str(children[-1]).replace("`", "")
        return ast.Attribute(name, position=_at(meta), anniversary=len(children) == 2)

    def cmp_op(self, meta: Meta, children: list[Token]) -> str:
        return _COMPARISONS[children[0].type]

    # values

    def value(self, meta: Meta, children: list[Token]) -> ast.Value:
        token = children[0]
        text, kind, position = str(token), token.type, _at(token)
        if kind == "STRING":
            return ast.Literal(self._string(token), position=position)
        if kind == "NUMBER":
            return ast.Literal(self._number(token), position=position)
        if kind in ("TRUE", "FALSE"):
            return ast.Literal(kind == "TRUE", position=position)
        if kind == "NULL":
            return ast.Literal(None, position=position)
        if kind == "DATE":
            return ast.DateValue(text, absolute=self._date(token), position=position)
        if kind == "NOW":
            return ast.DateValue(text, is_now=True, position=position)
        if kind in _RELATIVE_WORDS:
            return ast.DateValue(text, offset=_RELATIVE_WORDS[kind], unit="d", position=position)
        if kind == "RELDATE":
            return ast.DateValue(text, offset=int(text[:-1]), unit=text[-1].lower(), position=position)
        # AGO: 30_days_ago
        amount, unit, _ = text.split("_")
        return ast.DateValue(text, offset=-int(amount), unit=unit[0].lower(), position=position)

    def _string(self, token: Token) -> str:
        body = str(token)[1:-1]

        def unescape(match: re.Match[str]) -> str:
            # \' \" \\ lose the backslash, a doubled quote (SQL style) is one quote; any
            # other backslash stays, so that patterns like '\d+' mean what they say.
            if match.group(1):
                return match.group(1)
            quote = str(token)[0]
            return quote if match.group(0) == quote * 2 else match.group(0)

        return _STRING_ESCAPE.sub(unescape, body)

    def _number(self, token: Token) -> int | float:
        text = str(token)
        if not any(c in text for c in ".eE"):
            return int(text)
        number = float(text)
        if not math.isfinite(number):
            raise self._error(f"{_shown(token)} is too large a number", token)
        return number

    def _date(self, token: Token) -> date | datetime:
        text = str(token)
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}(?:[Tt]\d{2}:.*)?", text):
            raise self._error(
                f"{_shown(token)} is not a date; write dates as YYYY-MM-DD, like 2024-05-01", token
            )
        try:
            if len(text) == 10:
                return date.fromisoformat(text)
            moment = datetime.fromisoformat(text.upper())
        except ValueError as e:
            raise self._error(f"{_shown(token)} is not a real date or time ({e})", token) from None
        # Stored timestamps are naive UTC: an offset is applied, then dropped.
        return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo is not None else moment

    def duration(self, meta: Meta, children: list[Token]) -> ast.Duration:
        token = children[0]
        amount = int(str(token)[:-1])
        if amount <= 0:
            raise self._error(f"{_shown(token)} is not a duration: {_DURATION_RULE}", token)
        return ast.Duration(amount, str(token)[-1].lower(), position=_at(token))

    # behavioral conditions

    def count_option(self, meta: Meta, children: list[Any]) -> _Option:
        keyword, op, number = children
        value = self._number(number)
        if not isinstance(value, int) or value < 0:
            raise self._error(
                f"count takes a whole number of times, like count >= 3, not {_shown(number)}", number
            )
        return _Option("count", keyword, ast.CountFilter(op, value, position=_at(keyword)))

    def within_option(self, meta: Meta, children: list[Any]) -> _Option:
        return _Option("within", children[0], children[1])

    def for_option(self, meta: Meta, children: list[Any]) -> _Option:
        return _Option("for", children[0], children[1])

    def after_option(self, meta: Meta, children: list[Any]) -> _Option:
        return _Option("after", children[0], children[1])

    def where_option(self, meta: Meta, children: list[Any]) -> _Option:
        self._check_event_condition(children[1])
        return _Option("where", children[0], children[1])

    def _check_event_condition(self, condition: ast.Condition) -> None:
        if isinstance(condition, ast.And | ast.Or):
            for item in condition.items:
                self._check_event_condition(item)
        elif isinstance(condition, ast.Not):
            self._check_event_condition(condition.item)
        elif isinstance(condition, ast.Performed | ast.Stopped | ast.Restarted | ast.Funnel | ast.InSegment):
            position = condition.position
            word = self._word_at(position)
            raise SegmentQueryError(
                "where takes conditions on the event's fields, like where category = 'shoes'; "
                f"'{word}' cannot be used inside where",
                line=position.line,
                column=position.column,
                token=word,
            )

    def _word_at(self, position: ast.Position) -> str:
        line = self._text.split("\n")[position.line - 1]
        match = re.match(r"[A-Za-z_]+", line[position.column - 1 :])
        return match.group() if match else ""

    def _options(self, children: list[Any]) -> dict[str, _Option]:
        options: dict[str, _Option] = {}
        for option in children:
            if not isinstance(option, _Option):
                continue
            if option.name in options:
                raise self._error(
                    f"the option '{option.name}' is given twice; give each option once", option.token
                )
            options[option.name] = option
        return options

    def _event(self, token: Token, what: str = "event") -> str:
        name = self._string(token)
        if not name.strip():
            raise self._error(f"the {what} name is empty", token)
        return name

    def performed(self, meta: Meta, children: list[Any]) -> ast.Performed:
        first = _is_token(children[0], "FIRST")
        event = next(child for child in children if _is_token(child, "STRING"))
        options = self._options(children)
        if first and "count" in options:
            raise self._error(
                "first performed(...) takes within and where, not count: the first time happens once",
                options["count"].token,
            )
        return ast.Performed(
            self._event(event),
            count=options["count"].value if "count" in options else None,
            within=options["within"].value if "within" in options else None,
            where=options["where"].value if "where" in options else None,
            first=first,
            position=_at(meta),
        )

    def stopped(self, meta: Meta, children: list[Any]) -> ast.Stopped:
        options = self._options(children)
        if "for" not in options:
            raise SegmentQueryError(
                "stopped performing needs `for DURATION`, "
                "like stopped performing('Order Completed', for 90d)",
                line=meta.line,
                column=meta.column,
                token=str(children[0]),
            )
        where = options["where"].value if "where" in options else None
        return ast.Stopped(self._event(children[2]), options["for"].value, where=where, position=_at(meta))

    def restarted(self, meta: Meta, children: list[Any]) -> ast.Restarted:
        options = self._options(children)
        missing = [f"`{name} DURATION`" for name in ("after", "within") if name not in options]
        if missing:
            raise SegmentQueryError(
                f"restarted performing needs {' and '.join(missing)}, "
                "like restarted performing('Order Completed', after 90d, within 30d)",
                line=meta.line,
                column=meta.column,
                token=str(children[0]),
            )
        where = options["where"].value if "where" in options else None
        return ast.Restarted(
            self._event(children[2]),
            options["after"].value,
            options["within"].value,
            where=where,
            position=_at(meta),
        )

    def funnel(self, meta: Meta, children: list[Any]) -> ast.Funnel:
        steps = tuple(child for child in children if isinstance(child, ast.Performed))
        for step in steps:
            if step.first or step.count is not None:
                position = step.count.position if step.count is not None else step.position
                word = "count" if step.count is not None else "first"
                raise SegmentQueryError(
                    f"funnel steps take within and where only; remove {word} from this step",
                    line=position.line,
                    column=position.column,
                    token=self._word_at(position),
                )
        within = next((child for child in children if isinstance(child, ast.Duration)), None)
        return ast.Funnel(steps, within=within, position=_at(meta))

    def in_segment(self, meta: Meta, children: list[Token]) -> ast.InSegment:
        return ast.InSegment(self._event(children[1], "segment"), position=_at(meta))
