"""`google.api.http` annotations turned into routes: a path template as a regular
expression, the fields it binds, and where the body goes.

Templates follow google/api/http.proto: literal segments, `*` (one segment), `**` (the
rest), variables `{field.path}` or `{field.path=pattern}`, and a `:verb` suffix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import Descriptor

VERBS = ("get", "put", "post", "delete", "patch")
_FIELD_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_LITERAL = re.compile(r"[A-Za-z0-9._~%!$&'()+,;=@-]+")
_VARIABLE = re.compile(r"\{([^{}=]+)(?:=([^{}]+))?\}")


class TemplateError(ValueError):
    """A path template outside google/api/http.proto's grammar."""


@dataclass(frozen=True, slots=True)
class HttpRule:
    """One verb and path of a method, with the fields its path binds."""

    verb: str
    template: str
    pattern: re.Pattern[str]
    fields: tuple[str, ...]
    body: str
    response_body: str

    def match(self, path: str) -> dict[str, str] | None:
        """The bound fields of `path` (decoded, after the service code), or None."""
        found = self.pattern.fullmatch(path)
        if found is None:
            return None
        return {field: found[f"f{i}"] for i, field in enumerate(self.fields)}


def _segment(segment: str) -> str:
    if segment == "*":
        return "[^/]+"
    if segment == "**":
        return ".+"
    if _LITERAL.fullmatch(segment):
        return re.escape(segment)
    raise TemplateError(f"segment {segment!r} is not a literal, * or **")


def _literal_run(text: str) -> str:
    """Text between variables: segments and the slashes that part them."""
    return "/".join(_segment(part) if part else "" for part in text.split("/"))


def compile_template(template: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    """The regular expression of a path template and the field paths it binds, in order."""
    if not template.startswith("/"):
        raise TemplateError(f"{template!r} does not start with /")
    path, verb = template, ""
    last = template.rsplit("/", 1)[-1]
    if ":" in last and "}" not in last.rpartition(":")[2]:
        path, _, verb = template.rpartition(":")
        if not _LITERAL.fullmatch(verb):
            raise TemplateError(f"verb {verb!r} is not a literal")
    for segment in _VARIABLE.sub("{}", path)[1:].split("/"):
        if segment != "{}":  # a variable is a whole segment; the rest literals, * or **
            _segment(segment)
    # `**` (the rest of the path) only at its end: two of them would let a long path
    # make the regular expression backtrack for as long as the caller likes.
    if path.count("**") > 1 or ("**" in path and not path.rstrip("}").endswith("**")):
        raise TemplateError(f"{template!r}: ** may only end the path")
    regex: list[str] = []
    fields: list[str] = []
    at = 0
    for variable in _VARIABLE.finditer(path):
        regex.append(_literal_run(path[at : variable.start()]))
        field, inner = variable[1], variable[2] or "*"
        if not _FIELD_PATH.fullmatch(field) or field in fields:
            raise TemplateError(f"variable {field!r} is not a new field path")
        if any(not part for part in inner.split("/")):
            raise TemplateError(f"variable {field!r} has an empty segment")
        segments = "/".join(_segment(part) for part in inner.split("/"))
        regex.append(f"(?P<f{len(fields)}>{segments})")
        fields.append(field)
        at = variable.end()
    regex.append(_literal_run(path[at:]))
    if verb:
        regex.append(re.escape(":" + verb))
    return re.compile("".join(regex)), tuple(fields)


def http_rules(method: descriptor_pb2.MethodDescriptorProto) -> list[HttpRule]:
    """The routes a method's `google.api.http` option declares (none without one);
    TemplateError for a template that cannot be served."""
    if not method.options.HasExtension(annotations_pb2.http):
        return []
    top = method.options.Extensions[annotations_pb2.http]
    return [_rule(binding) for binding in (top, *top.additional_bindings)]


def _rule(binding: http_pb2.HttpRule) -> HttpRule:
    pattern_kind = binding.WhichOneof("pattern")
    if pattern_kind in VERBS:
        verb, template = pattern_kind, getattr(binding, pattern_kind)
    elif pattern_kind == "custom":
        verb, template = binding.custom.kind.lower(), binding.custom.path
    else:
        raise TemplateError("an http rule without a pattern")
    pattern, fields = compile_template(template)
    return HttpRule(verb.upper(), template, pattern, fields, binding.body, binding.response_body)


def check_fields(rule: HttpRule, request: Descriptor, reply: Descriptor) -> None:
    """TemplateError unless every field the rule names is in its message: path variables
    (dotted, through message fields) and `body` in the request, `response_body` in the
    reply."""
    for path in rule.fields:
        message: Descriptor | None = request
        for name in path.split("."):
            field = message.fields_by_name.get(name) if message is not None else None
            if field is None:
                raise TemplateError(f"{rule.template}: {request.name} has no field {path}")
            message = field.message_type
    if rule.body not in ("", "*") and rule.body not in request.fields_by_name:
        raise TemplateError(f"body: {request.name} has no field {rule.body}")
    if rule.response_body and rule.response_body not in reply.fields_by_name:
        raise TemplateError(f"response_body: {reply.name} has no field {rule.response_body}")
