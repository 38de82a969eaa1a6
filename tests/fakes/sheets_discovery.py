"""Google's Sheets v4 discovery document as the contract the fake Sheets server is held to.

The document is read from the installed google-api-python-client (``discovery_cache/documents/sheets.v4.json``),
never copied. Request paths are matched to its methods; query strings, JSON bodies and ``fields`` masks are parsed
the way Google's frontend parses them, refused with its error texts (proto paths in snake_case, names as sent);
responses of the fake are checked against the response schemas.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, NoReturn, TypeAlias
from urllib.parse import unquote

_DOC = "discovery_cache/documents/sheets.v4.json"
_PKG = "type.googleapis.com/google.apps.sheets.v4."
_STATUS = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND"}
_INVALID_ARGUMENT = "Request contains an invalid argument."
# Proto enum types are not named in the discovery document. Measured names, keyed by their value set; other enums
# fall back to the capitalised field name (a guess: Sheets nests some enums in messages, e.g. PieChartSpec.*).
_ENUM_TYPES = {
    frozenset({"INPUT_VALUE_OPTION_UNSPECIFIED", "RAW", "USER_ENTERED"}): "ValueInputOption",
    frozenset({"DIMENSION_UNSPECIFIED", "ROWS", "COLUMNS"}): "Dimension",
    frozenset({"FORMATTED_VALUE", "UNFORMATTED_VALUE", "FORMULA"}): "ValueRenderOption",
    frozenset({"SERIAL_NUMBER", "FORMATTED_STRING"}): "DateTimeRenderOption",
}
_MESSAGE_TYPES = {"Request": "BatchUpdateSpreadsheetRequest.Request"}  # as named in a reproduced 400 text
_ONEOFS = {"Request": "kind"}  # schema -> oneof name: every property of Request is one "kind" of update
_SCALARS = {
    ("integer", "int32"): ("TYPE_INT32", -(2**31), 2**31 - 1),
    ("string", "int64"): ("TYPE_INT64", -(2**63), 2**63 - 1),
}
_TEXTS = {
    "unknown": 'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.',
    "list": 'Invalid JSON payload received. Unknown name "{name}"{at}: Proto field is not repeating, '
    "cannot start list.",
    "value": "Invalid value at '{path}' ({name}), {json}",
    "oneof": "Invalid value at '{path}' (oneof), oneof field '{value}' is already set. Cannot set '{name}'",
    "unbound": 'Invalid JSON payload received. Unknown name "{name}": Cannot bind query parameter. '
    "Field '{name}' could not be found in request message.",
    "repeated": 'Invalid JSON payload received. Multiple values for non-repeated query parameter "{name}".',  # guess
    "null": "{path}: null is never emitted",  # responses only
    "semantic": "{name}",  # a check after parsing: the whole message
}
_MaskTree: TypeAlias = "dict[str, _MaskTree | None]"  # name -> sub-selection (None: the whole field)
_MASK_PATH = re.compile(r"\s*([\w$*]+(?:\s*[./]\s*[\w$*]+)*)\s*")


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def _camel(name: str) -> str:
    return re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), name)


class DiscoveryError(Exception):
    """A request the real API refuses, with Google's error body (``{"error": {code, message, status, details}}``)."""

    def __init__(self, code: int, message: str, violations: list[tuple[str | None, str]] | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.violations = code, message, list(violations or [])

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message, "status": _STATUS.get(self.code, "UNKNOWN")}
        if self.violations:
            fv = [({"field": f} if f else {}) | {"description": d} for f, d in self.violations]
            err["details"] = [{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": fv}]
        return {"error": err}


@dataclass
class Operation:
    """One discovery method matched to a request path."""

    id: str  # "sheets.spreadsheets.values.batchGet"
    http_method: str
    path: str  # the template, e.g. "v4/spreadsheets/{spreadsheetId}/values/{range}:append"
    path_params: dict[str, str]  # decoded
    request: str | None  # request schema name
    response: str | None  # response schema name
    parameters: dict[str, Any] = field(default_factory=dict, repr=False)  # the method's declared parameters


@dataclass(frozen=True)
class _Problem:
    kind: str  # unknown | list | value | oneof | null | semantic
    path: str  # proto path (snake_case); for unknown/list the enclosing message
    name: str = ""  # the offending key as sent, or the type name for "value"
    value: Any = None

    def describe(self) -> str:
        at, js = (f" at '{self.path}'" if self.path else ""), json.dumps(self.value, ensure_ascii=False)
        return _TEXTS[self.kind].format(name=self.name, at=at, path=self.path, value=self.value, json=js)

    def violation(self) -> tuple[str | None, str]:
        return (self.path or None), self.describe()


def _pb_text(v: Any) -> list[str]:
    """A google.protobuf.Value in protobuf text format (how the API echoes a bad cell)."""
    if isinstance(v, list):
        return _pb_block("list_value", [ln for x in v for ln in _pb_block("values", _pb_text(x))])
    if isinstance(v, dict):
        fields = [[f"key: {json.dumps(k)}", *_pb_block("value", _pb_text(x))] for k, x in v.items()]
        return _pb_block("struct_value", [ln for f in fields for ln in _pb_block("fields", f)])
    if v is None or isinstance(v, bool):
        return ["null_value: NULL_VALUE" if v is None else f"bool_value: {str(v).lower()}"]
    return [f"number_value: {float(v)!r}" if isinstance(v, int | float) else f"string_value: {json.dumps(v)}"]


def _pb_block(name: str, lines: list[str]) -> list[str]:
    return [f"{name} {{", *("  " + ln for ln in lines), "}"]


def _parse_mask(text: str) -> _MaskTree:
    """Google's partial-response syntax: ``a,b/c,d(e,f.g),*`` -> a selection tree; DiscoveryError when malformed."""
    pos, bad = 0, DiscoveryError(400, _INVALID_ARGUMENT, [(text, f"Invalid 'fields' parameter syntax: '{text}'.")])

    def items() -> _MaskTree:
        nonlocal pos
        tree: _MaskTree = {}
        while True:
            m = _MASK_PATH.match(text, pos)
            if not m:
                raise bad
            names, pos, sub = re.split(r"\s*[./]\s*", m.group(1)), m.end(), None
            if text[pos : pos + 1] == "(":
                pos += 1
                sub = items()
                if text[pos : pos + 1] != ")":
                    raise bad
                pos += 1
                pos += len(text[pos:]) - len(text[pos:].lstrip())
            _merge(tree, names, sub)
            if text[pos : pos + 1] != ",":
                return tree
            pos += 1

    tree = items()
    if pos != len(text):
        raise bad
    return tree


def _merge(tree: _MaskTree, names: list[str], sub: _MaskTree | None) -> None:
    for i, name in enumerate(names):
        if name in tree and tree[name] is None:
            return  # already selected whole
        if i == len(names) - 1 and sub is None:
            tree[name] = None
            return
        child = tree.setdefault(name, {})
        assert child is not None
        tree = child
    for name, s in (sub or {}).items():
        _merge(tree, [name], s)


def _leaf(tree: _MaskTree | None) -> list[str]:
    """The first full path under a selection (Google reports expanded leaf paths)."""
    if not tree:
        return []
    name, sub = next(iter(tree.items()))
    return [name, *_leaf(sub)]


class SheetsApi:
    """The Sheets v4 discovery document, indexed for request matching and validation."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.standard_params: dict[str, Any] = doc["parameters"]
        self.methods: list[dict[str, Any]] = []
        todo = [doc]
        while todo:
            res = todo.pop()
            self.methods += res.get("methods", {}).values()
            todo += res.get("resources", {}).values()
        # templates with more literal text first, so ":verb" templates win over a bare "{var}"
        self.methods.sort(key=lambda m: -len(re.sub(r"\{[^}]*\}", "", m["flatPath"])))
        self.schemas: dict[str, Any] = doc["schemas"]
        self._props: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {
            name: {k: (camel, spec) for camel, spec in s.get("properties", {}).items() for k in (camel, _snake(camel))}
            for name, s in self.schemas.items()
        }

    # ---- matching --------------------------------------------------------------------------------
    def match(self, http_method: str, path: str) -> Operation:
        raw = path.split("?", 1)[0].lstrip("/")
        segs = raw.split("/")
        for m in self.methods:
            if m["httpMethod"] != http_method.upper():
                continue
            params = _match_template(m["flatPath"], segs)
            if params is not None:
                req, resp = m.get("request", {}).get("$ref"), m.get("response", {}).get("$ref")
                return Operation(m["id"], m["httpMethod"], m["flatPath"], params, req, resp, m.get("parameters", {}))
        raise DiscoveryError(404, f"The requested URL /{raw} was not found on this server.")

    # ---- query string ----------------------------------------------------------------------------
    def validate_query(self, op: Operation, query: dict[str, list[str]]) -> None:
        specs = {**self.standard_params, **op.parameters}
        for name, value in op.path_params.items():
            self._raise([self._query_value(name, op.parameters[name], value)])
        for name, values in query.items():
            if (spec := specs.get(name)) is None:
                _fail([_Problem("unbound", "", name)])
            if len(values) > 1 and not spec.get("repeated"):
                _fail([_Problem("repeated", _snake(name), name)])
            self._raise([self._query_value(name, spec, v) for v in values])

    @staticmethod
    def _query_value(name: str, spec: dict[str, Any], value: str) -> _Problem | None:
        if "enum" in spec:
            ok, tname = value in spec["enum"], _type_name(spec, name)
        elif spec.get("type") == "boolean":
            ok, tname = value.lower() in ("true", "false"), "TYPE_BOOL"
        elif spec.get("type") == "integer":
            ok, tname = _scalar_ok(spec, value, False), _type_name(spec)
        else:
            return None
        return None if ok else _Problem("value", _snake(name), tname, value)

    # ---- JSON body -------------------------------------------------------------------------------
    def validate_body(self, op: Operation, body: Any) -> None:
        if op.request is None or body is None:
            return
        if not isinstance(body, dict):
            raise DiscoveryError(400, "Invalid JSON payload received. Root element must be a message.")
        problems: list[_Problem] = []
        self._message(op.request, body, "", problems, strict=False)
        self._raise([p for p in problems if p.kind != "semantic"])
        self._raise([p for p in problems if p.kind == "semantic"][:1], details=False)

    def validate_response(self, op: Operation, data: Any) -> list[str]:
        """Problems with a response body: unknown or snake_case fields, wrong JSON types, nulls, bad enums."""
        if op.response is None:
            return [] if data in (None, {}) else [f"{op.id} has no response body"]
        problems: list[_Problem] = []
        self._message(op.response, data, "", problems, strict=True)
        return [p.describe() for p in problems]

    def _message(self, schema: str, value: Any, path: str, out: list[_Problem], strict: bool) -> None:
        if not isinstance(value, dict):
            out.append(_Problem("value", path, _PKG + _MESSAGE_TYPES.get(schema, schema), value))
            return
        props, oneof = self._props[schema], None
        for key, v in value.items():
            hit = props.get(key)
            if hit is None or (strict and hit[0] != key):
                out.append(_Problem("unknown", path, key))
                continue
            camel, spec = hit
            sub = f"{path}.{_snake(camel)}" if path else _snake(camel)
            if isinstance(v, list) and spec.get("type") not in ("array", "any"):
                out.append(_Problem("list", path, key))
                continue
            if schema in _ONEOFS and v is not None and not strict:
                if oneof is not None:
                    out.append(_Problem("oneof", path, key, _ONEOFS[schema]))
                    continue
                oneof = key
            self._value(spec, v, sub, out, strict)
            if spec.get("type") == "array" and spec["items"].get("items", {}).get("type") == "any":
                out += _cells(v)
            if spec.get("format") == "google-fieldmask" and isinstance(v, str) and not strict:
                out += self._update_mask(schema, v, path)
        if schema in _ONEOFS and oneof is None and not strict:
            out.append(_Problem("semantic", path, f"Invalid {_camel(path)}: No request set."))

    def _value(self, spec: dict[str, Any], value: Any, path: str, out: list[_Problem], strict: bool) -> None:
        t = spec.get("type")
        if value is None:
            if strict and t != "any":
                out.append(_Problem("null", path))
        elif "$ref" in spec:
            self._message(spec["$ref"], value, path, out, strict)
        elif t == "array":
            if not isinstance(value, list):
                out.append(_Problem("value", path, _type_name(spec["items"]), value))
                return
            for i, item in enumerate(value):
                self._value(spec["items"], item, f"{path}[{i}]", out, strict)
        elif t == "object":
            if not isinstance(value, dict):
                out.append(_Problem("value", path, "type.googleapis.com/google.protobuf.Struct", value))
                return
            for k, item in value.items():
                self._value(spec["additionalProperties"], item, f"{path}[{k}]", out, strict)
        elif t != "any" and not _scalar_ok(spec, value, strict):
            out.append(_Problem("value", path, _type_name(spec, path), value))

    def _update_mask(self, schema: str, mask: str, path: str) -> list[_Problem]:
        """An Update*Request ``fields`` mask names fields of its ``properties`` message (checked when present)."""
        target = self.schemas[schema]["properties"].get("properties", {}).get("$ref")
        if target is None or mask.strip() in ("", "*"):
            return []
        try:
            bad = self._mask_walk({"$ref": target}, _parse_mask(mask), [])
        except DiscoveryError:
            bad = mask
        return [_Problem("semantic", path, f"Invalid {_camel(path)}: Invalid field: {bad}")] if bad else []

    # ---- fields (partial response) ---------------------------------------------------------------
    def validate_fields_mask(self, op: Operation, fields: str) -> None:
        bad = self._mask_walk({"$ref": op.response} if op.response else {}, _parse_mask(fields), [])
        if bad:
            desc = f"Error expanding 'fields' parameter. Cannot find matching fields for path '{bad}'."
            raise DiscoveryError(400, _INVALID_ARGUMENT, [(fields, desc)])

    def _mask_walk(self, spec: dict[str, Any], tree: _MaskTree, trail: list[str]) -> str | None:
        """The first selected path that does not exist under ``spec`` (arrays are transparent), else None."""
        while spec.get("type") == "array":
            spec = spec["items"]
        if spec.get("type") in ("any", "object"):
            return None  # Value / map: any key below
        props = self._props.get(spec.get("$ref", ""), {})
        for name, sub in tree.items():
            hit = props.get(name)
            if name != "*" and hit is None:
                return ".".join([*trail, name, *_leaf(sub)])
            if sub and hit is not None and (bad := self._mask_walk(hit[1], sub, [*trail, name])):
                return bad
        return None

    @staticmethod
    def apply_fields_mask(data: Any, fields: str) -> Any:
        """Keep only the selected fields, as Google does for a partial response."""
        return _apply(data, _parse_mask(fields))

    @staticmethod
    def _raise(problems: Sequence[_Problem | None], details: bool = True) -> None:
        if found := [p for p in problems if p is not None]:
            _fail(found, details)


def _fail(problems: list[_Problem], details: bool = True) -> NoReturn:
    message = "\n".join(p.describe() for p in problems)
    raise DiscoveryError(400, message, [p.violation() for p in problems] if details else None)


def _match_template(template: str, segs: list[str]) -> dict[str, str] | None:
    tsegs = template.split("/")
    if len(tsegs) != len(segs):
        return None
    params: dict[str, str] = {}
    for t, s in zip(tsegs, segs, strict=True):
        m = re.fullmatch(r"\{\+?(\w+)\}(.*)", t)
        if m is None:
            if unquote(s) != t:
                return None
            continue
        name, verb = m.groups()
        if verb:
            if not s.endswith(verb) or len(s) == len(verb):
                return None
            s = s[: -len(verb)]
        if not s:
            return None
        params[name] = unquote(s)
    return params


def _type_name(spec: dict[str, Any], path: str = "") -> str:
    """The type an "Invalid value at" message names; ``path`` (proto path or query name) names an enum's field."""
    if "$ref" in spec:
        return _PKG + _MESSAGE_TYPES.get(str(spec["$ref"]), str(spec["$ref"]))
    if "enum" in spec:
        field_name = _camel(re.sub(r"\[.*", "", path.rsplit(".", 1)[-1]))
        return _PKG + _ENUM_TYPES.get(frozenset(map(str, spec["enum"])), field_name[:1].upper() + field_name[1:])
    if spec.get("type") in ("array", "any"):  # only ValueRange.values: a row is a google.protobuf.ListValue
        return "type.googleapis.com/google.protobuf.ListValue"
    t, fmt = str(spec.get("type", "")), str(spec.get("format", ""))
    if (t, fmt) in _SCALARS:
        return _SCALARS[(t, fmt)][0]
    return {"boolean": "TYPE_BOOL", "number": "TYPE_FLOAT" if fmt == "float" else "TYPE_DOUBLE"}.get(t, "TYPE_STRING")


def _scalar_ok(spec: dict[str, Any], v: Any, strict: bool) -> bool:
    """Does ``v`` parse as this scalar under proto3's JSON mapping (strict: as Google itself would emit it)?"""
    t, fmt = str(spec.get("type")), str(spec.get("format", ""))
    if isinstance(v, bool):
        return t == "boolean"
    if "enum" in spec:
        return v in spec["enum"] or (not strict and isinstance(v, int) and 0 <= v < len(spec["enum"]))
    if (t, fmt) in _SCALARS:
        _, lo, hi = _SCALARS[(t, fmt)]
        as_text = t == "string"  # 64-bit integers are emitted as strings, 32-bit ones as numbers
        if isinstance(v, str) and re.fullmatch(r"-?\d+", v) and (as_text or not strict):
            return lo <= int(v) <= hi
        if isinstance(v, float) and not strict and v.is_integer():
            v = int(v)
        return isinstance(v, int) and lo <= v <= hi and not (strict and as_text)
    if t == "number":
        if isinstance(v, str):
            num = re.fullmatch(r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", v)
            return v in ("NaN", "Infinity", "-Infinity") or (not strict and num is not None)
        return isinstance(v, int | float)
    if t == "boolean":
        return False
    return isinstance(v, str)


def _cells(values: Any) -> list[_Problem]:
    """``values`` cells must be scalars: a nested list/object is refused after parsing (first one reported)."""
    for i, row in enumerate(values if isinstance(values, list) else []):
        for j, cell in enumerate(row if isinstance(row, list) else []):
            if isinstance(cell, list | dict):
                return [_Problem("semantic", "", f"Invalid values[{i}][{j}]: " + "\n".join(_pb_text(cell)) + "\n")]
    return []


def _apply(data: Any, tree: _MaskTree) -> Any:
    if isinstance(data, list):
        return [_apply(x, tree) for x in data]
    if not isinstance(data, dict):
        return data
    out = {}
    for key, value in data.items():
        names = [n for n in (key, _snake(key), "*") if n in tree]
        if names:
            sel = tree[names[0]]
            out[key] = value if sel is None else _apply(value, sel)
    return out


@functools.cache
def sheets_api() -> SheetsApi:
    """The installed google-api-python-client's Sheets v4 discovery document, loaded and indexed once."""
    text = (resources.files("googleapiclient") / _DOC).read_text(encoding="utf-8")
    return SheetsApi(json.loads(text))


def validate_request(http_method: str, path: str, query: dict[str, list[str]], body: Any) -> Operation:
    """match + validate_query + validate_body (+ the ``fields`` mask when given); raises DiscoveryError."""
    api = sheets_api()
    op = api.match(http_method, path)
    api.validate_query(op, query)
    api.validate_body(op, body)
    if "fields" in query:
        api.validate_fields_mask(op, query["fields"][0])
    return op
