"""Connexion's request and response validation, with per-request lookups done once.

Both do what Connexion 3.3's own middleware does, in the same place of the
stack, with the same validators (handlers/validation.py): what Connexion
looks up or builds anew for every request (URI parser, parameter validator,
response definitions, media-type tables) is worked out once per operation,
and per status and media type. One check is added: a handler's response with
a status the operation does not declare is refused (a 500, logged) instead
of passing unvalidated.
"""

import typing as t
from dataclasses import dataclass

from connexion import utils
from connexion.datastructures import MediaTypeDict
from connexion.exceptions import NonConformingResponse, NonConformingResponseHeaders
from connexion.middleware.main import ConnexionMiddleware
from connexion.middleware.request_validation import (
    RequestValidationAPI,
    RequestValidationMiddleware,
    RequestValidationOperation,
)
from connexion.middleware.response_validation import (
    ResponseValidationAPI,
    ResponseValidationMiddleware,
    ResponseValidationOperation,
)
from starlette.types import Receive, Scope, Send


class CheckedRequestOperation(RequestValidationOperation):
    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        operation = self._operation
        uri_parser = operation._uri_parser_class(operation.parameters, operation.body_definition())
        self._parameters = self._validator_map["parameter"](
            operation.parameters,
            uri_parser=uri_parser,
            strict_validation=self.strict_validation,
            security_query_params=self.security_query_params,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._parameters.validate(scope)
        if not self._operation.request_body:
            await self.next_app(scope, receive, send)
            return
        # A body: Connexion's own content-type and body validation.
        await self._validate_body_then(scope, receive, send)

    async def _validate_body_then(self, scope: Scope, receive: Receive, send: Send) -> None:
        mime_type, encoding = self.extract_content_type(scope["headers"])
        self.validate_mime_type(mime_type)
        schema = self._operation.body_schema(mime_type)
        validator_class = self._validator_map["body"].get(mime_type) if schema else None
        if validator_class is not None:
            validator = validator_class(
                schema=schema,
                required=self._operation.request_body.get("required", False),
                nullable=utils.is_nullable(self._operation.body_definition(mime_type)),
                encoding=encoding,
                strict_validation=self.strict_validation,
            )
            receive, scope = await validator.wrap_receive(receive, scope=scope)
        await self.next_app(scope, receive, send)


class CheckedRequestAPI(RequestValidationAPI):
    def make_operation(self, operation) -> CheckedRequestOperation:
        return CheckedRequestOperation(
            self.next_app,
            operation=operation,
            strict_validation=self.strict_validation,
            validator_map=self.validator_map,
        )


class CheckedRequestMiddleware(RequestValidationMiddleware):
    api_cls = CheckedRequestAPI


@dataclass(frozen=True)
class _ResponseRule:
    """What a response of one status and media type must be."""

    declared: bool
    required_headers: frozenset[str]
    validator: type | None
    schema: dict
    nullable: bool


class CheckedResponseOperation(ResponseValidationOperation):
    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._rules: dict[tuple[int, str], _ResponseRule] = {}
        self._produces = MediaTypeDict([(p.lower(), None) for p in self._operation.produces])

    def _rule(self, status: int, mime_type: str) -> _ResponseRule:
        key = (status, mime_type)
        if key not in self._rules:
            definition = self._operation.response_definition(str(status), mime_type)
            self._rules[key] = _ResponseRule(
                declared=str(status) in self._operation.responses
                or "default" in self._operation.responses,
                required_headers=frozenset(
                    name.lower()
                    for name, header in definition.get("headers", {}).items()
                    if header.get("required", False)
                ),
                validator=self._validator_map["response"].get(mime_type),
                schema=self._operation.response_schema(str(status), mime_type),
                nullable=utils.is_nullable(definition),
            )
        return self._rules[key]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def checked_send(message: t.MutableMapping[str, t.Any]) -> None:
            nonlocal send
            if message["type"] == "http.response.start":
                headers = message["headers"]
                status = message["status"]
                mime_type, encoding = self.extract_content_type(headers)
                if status < 400 and self._produces and mime_type.lower() not in self._produces:
                    raise NonConformingResponseHeaders(
                        detail=f"Invalid response Content-Type {mime_type}"
                    )
                rule = self._rule(status, mime_type)
                if not rule.declared:
                    raise NonConformingResponse(
                        detail=f"Status {status} is not declared for this operation."
                    )
                missing = rule.required_headers - {
                    name.decode("latin-1").lower() for name, _ in headers
                }
                if missing:
                    raise NonConformingResponseHeaders(
                        detail=f"Required response header(s) missing: {sorted(missing)}"
                    )
                if rule.validator is not None:
                    validator = rule.validator(
                        scope, schema=rule.schema, nullable=rule.nullable, encoding=encoding
                    )
                    send = validator.wrap_send(send)
            await send(message)

        await self.next_app(scope, receive, checked_send)


class CheckedResponseAPI(ResponseValidationAPI):
    def make_operation(self, operation) -> CheckedResponseOperation:
        if not self.validate_responses:
            return self.next_app
        return CheckedResponseOperation(
            self.next_app, operation=operation, validator_map=self.validator_map
        )


class CheckedResponseMiddleware(ResponseValidationMiddleware):
    api_cls = CheckedResponseAPI


def middleware_stack() -> list:
    """Connexion's default middleware, with these two in place of the stock validation."""
    replacements = {
        RequestValidationMiddleware: CheckedRequestMiddleware,
        ResponseValidationMiddleware: CheckedResponseMiddleware,
    }
    return [replacements.get(m, m) for m in ConnexionMiddleware.default_middlewares]
