"""Request and response validation against openapi.yaml, plugged into Connexion.

Connexion's stock validators build a fresh pure-Python Draft 4 validator for
every parameter, body and response, and their error messages echo the whole
schema. These compile each schema once (jsonschema-rs), parse JSON strictly
(orjson: no NaN, no 1e309, no lone surrogates, valid UTF-8 only; plus no
duplicate keys), check `format: date` for real calendar days, and say where
and why a request is wrong in a line a client can act on.
"""

import asyncio
import json
import re
import typing as t
from collections import Counter
from datetime import date
from urllib.parse import parse_qsl

import jsonschema_rs
import orjson
from connexion.datastructures import MediaTypeDict
from connexion.exceptions import (
    BadRequestProblem,
    NonConformingResponseBody,
    UnsupportedMediaTypeProblem,
)
from connexion.validators import (
    VALIDATOR_MAP,
    AbstractRequestBodyValidator,
    AbstractResponseBodyValidator,
    ParameterValidator,
)
from starlette.types import Receive, Scope

from handlers.threads import handler_threads

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# A quoted value longer than this is not repeated back in an error message.
_ECHO_LIMIT = 60


def is_calendar_date(value: str) -> bool:
    """`format: date`: YYYY-MM-DD and a day that exists (no 2026-02-30)."""
    if not _DATE.fullmatch(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _draft4(schema: t.Any) -> t.Any:
    """An OpenAPI 3.0 schema as plain Draft 4: `nullable: true` becomes a null type."""
    if isinstance(schema, list):
        return [_draft4(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {}
    for key, value in schema.items():
        if key == "properties":
            converted[key] = {name: _draft4(sub) for name, sub in value.items()}
        elif key != "components":  # Connexion attaches these; refs are already resolved
            converted[key] = _draft4(value)
    if converted.pop("nullable", False) is True:
        if "type" in converted:
            converted["type"] = [converted["type"], "null"]
        if "enum" in converted:
            converted["enum"] = [*converted["enum"], None]
    return converted


# Connexion hands over the same (already dereferenced) schema object on every
# call, so its identity keys the cache; the entry keeps the object alive.
_compiled: dict[int, tuple[dict, jsonschema_rs.Draft4Validator]] = {}


def compiled(schema: dict) -> jsonschema_rs.Draft4Validator:
    entry = _compiled.get(id(schema))
    if entry is None or entry[0] is not schema:
        validator = jsonschema_rs.Draft4Validator(
            _draft4(schema), formats={"date": is_calendar_date}, validate_formats=True
        )
        entry = _compiled[id(schema)] = (schema, validator)
    return entry[1]


def describe(error: jsonschema_rs.ValidationError) -> str:
    """One line: where (a JSON pointer) and why, without echoing long values."""
    message = error.message
    try:
        echoed = orjson.dumps(error.instance).decode()
    except TypeError:  # integers beyond 64 bits
        echoed = json.dumps(error.instance, ensure_ascii=False)
    if len(echoed) > _ECHO_LIMIT and message.startswith(echoed):
        message = "the value" + message[len(echoed) :]
    pointer = "/".join(str(part) for part in error.instance_path)
    return f"/{pointer}: {message}" if pointer else message


def _reject_duplicate_keys(pairs: list[tuple[str, t.Any]]) -> dict:
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        repeated = sorted({name for name, _ in pairs if name in seen or seen.add(name)})
        raise BadRequestProblem(detail=f"Duplicate key(s) in a JSON object: {repeated[:10]}")
    return found


def parse_json(body: bytes) -> t.Any:
    """Strict JSON: orjson decides what is valid; duplicate keys are refused too."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BadRequestProblem(detail=f"The request body is not valid JSON: {error}") from None
    if isinstance(parsed, dict | list):
        try:
            json.loads(body, object_pairs_hook=_reject_duplicate_keys)
        except RecursionError:
            raise BadRequestProblem(detail="The request body is nested too deeply.") from None
    return parsed


def first_error(schema: dict, instance: t.Any) -> jsonschema_rs.ValidationError | None:
    """The first way `instance` breaks `schema`, found without looking for the rest."""
    try:
        compiled(schema).validate(instance)
    except jsonschema_rs.ValidationError as error:
        return error
    return None


class JSONRequestBodyValidator(AbstractRequestBodyValidator):
    """Parses and validates on the handler threads: a large body never stalls the event loop."""

    async def _parse(self, stream: t.AsyncGenerator[bytes, None], scope: t.Any) -> t.Any:
        body = b"".join([chunk async for chunk in stream])
        if not body:
            return None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(handler_threads, self._parse_and_check, body)

    def _parse_and_check(self, body: bytes) -> t.Any:
        parsed = parse_json(body)
        try:
            error = first_error(self._schema, parsed)
        except ValueError:  # jsonschema-rs' recursion limit: no valid request nests so deep
            raise BadRequestProblem(detail="The request body is nested too deeply.") from None
        if error is not None:
            raise BadRequestProblem(detail=describe(error))
        return parsed

    def _validate(self, body: t.Any) -> None:
        # Everything but emptiness was checked as the body was parsed.
        if body is None:
            raise BadRequestProblem(detail="The request body must not be empty.")

    async def wrap_receive(self, receive: Receive, *, scope: Scope) -> tuple[Receive, Scope]:
        # Connexion guesses JSON when Content-Type is missing; a body must say what it is.
        headers = dict(scope["headers"])
        has_body = headers.get(b"content-length", b"0") != b"0" or b"transfer-encoding" in headers
        if has_body and b"content-type" not in headers:
            raise UnsupportedMediaTypeProblem(
                detail="The request body needs a Content-Type: application/json."
            )
        # JSON travels as UTF-8 (RFC 8259); a body declared otherwise is not read as it says.
        charset = _charset(headers.get(b"content-type", b"").decode("latin-1"))
        if charset not in (None, "utf-8", "utf8"):
            raise UnsupportedMediaTypeProblem(
                detail=f"JSON bodies are UTF-8; charset={charset} is not accepted."
            )
        return await super().wrap_receive(receive, scope=scope)


def _charset(content_type: str) -> str | None:
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.strip().partition("=")
        if name.lower() == "charset":
            return value.strip('"').lower()
    return None


class JSONResponseBodyValidator(AbstractResponseBodyValidator):
    def _parse(self, stream: t.Generator[bytes, None, None]) -> t.Any:
        body = b"".join(stream)
        return orjson.loads(body) if body else None

    def _validate(self, body: t.Any) -> None:
        error = first_error(self._schema, body)
        if error is not None:
            raise NonConformingResponseBody(
                detail=f"Response body does not conform to the specification: {describe(error)}"
            )


class CompiledParameterValidator(ParameterValidator):
    def validate(self, scope: Scope) -> None:
        # Connexion would silently pick one of `?page=1&page=2`; say it is ambiguous.
        query = scope["query_string"].decode("latin-1")
        names = [name for name, _ in parse_qsl(query, keep_blank_values=True)]
        repeated = sorted({name for name, count in Counter(names).items() if count > 1})
        if repeated:
            raise BadRequestProblem(detail=f"Query parameter(s) given more than once: {repeated}")
        super().validate(scope)

    @staticmethod
    def validate_parameter(parameter_type, value, param, param_name=None):
        if value is None:
            if param.get("required"):
                return f"Missing {parameter_type} parameter '{param['name']}'."
            return None
        error = first_error(param.get("schema", param), value)
        if error is None:
            return None
        return f"{parameter_type} parameter '{param['name']}': {describe(error)}"


def validator_map() -> dict:
    """Connexion's `validator_map`: these validators for JSON, the stock ones otherwise."""
    return {
        "parameter": CompiledParameterValidator,
        "body": MediaTypeDict({**VALIDATOR_MAP["body"], "*/*json": JSONRequestBodyValidator}),
        "response": MediaTypeDict(
            {**VALIDATOR_MAP["response"], "*/*json": JSONResponseBodyValidator}
        ),
    }
