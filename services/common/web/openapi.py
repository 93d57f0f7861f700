"""What each service's OpenAPI document says beyond its routes: the one error body, the
refusals every route can give, and Swagger UI served from the service itself (no CDN)."""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from services.common.web.fields import about

__all__ = ["ErrorBody", "about", "complete_document", "refusals", "serve_docs"]

SWAGGER_ASSETS = "/static/swagger"


class ErrorBody(BaseModel):
    """错误 Every refusal of every service: the rule broken and the field it concerns."""

    error: str = Field(
        description="错误类别 Kind: invalid, not_found, conflict, forbidden, unauthenticated, "
        "unavailable, too_large, bad_request, method_not_allowed",
        examples=["invalid"],
    )
    field: str | None = Field(
        description="字段 The field or parameter concerned (dotted path), or null",
        examples=["seller.credit_code"],
    )
    message: str = Field(
        description="说明 The rule broken, in words",
        examples=["fails the GB 32100-2015 check character"],
    )
    message_zh: str = Field(
        description="中文说明 The same rule in Chinese",
        examples=["校验码不符合 GB 32100-2015"],
    )
    rule: str | None = Field(
        default=None,
        description="规则 A short id of the rule broken, where the service names one",
        examples=["not_before_registration"],
    )
    index: int | None = Field(
        default=None,
        description="序号 In a batch: the index of the command refused",
        examples=[0],
    )
    errors: list[dict[str, Any]] | None = Field(
        default=None,
        description="全部错误 Of an invalid request: up to 20 errors, each with field, "
        "message and message_zh",
        examples=[
            [
                {
                    "field": "seller.credit_code",
                    "message": "must be 18 characters (GB 32100-2015)",
                    "message_zh": "须为 18 位（GB 32100-2015）",
                    "type": "value_error",
                }
            ]
        ],
    )
    error_count: int | None = Field(
        default=None, description="错误数 How many errors there were in all", examples=[1]
    )


_MEANING = {
    400: "请求无法解析 The body cannot be read (nested too deep, not JSON)",
    401: "未认证 No bearer token, or one the service does not know",
    403: "无权限 The token's role may not do this",
    404: "不存在 The request names something the service does not hold",
    409: "冲突 The request conflicts with what is stored (a number used before, a cancelled "
    "contract, an idempotency key reused with another body)",
    413: "请求过大 The body is over 1 MiB",
    422: "无效 The request breaks a rule: ``field`` names it, ``message`` states it",
    503: "暂不可用 The store or an upstream service cannot be reached; nothing was changed, "
    "retry later",
}


def refusals(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route for these refusal statuses, each with the error body."""
    return {status: {"model": ErrorBody, "description": _MEANING[status]} for status in statuses}


def complete_document(
    app: FastAPI, parameters: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The app's OpenAPI document, with the refusals every route may give added to each
    operation: 401 where a token is needed, 400 and 413 where a body is read, 422 where
    anything is, and 503 everywhere (each reads a store or an upstream service).
    ``parameters`` adds to the schema of each query parameter so named what is known only
    once the app is built (the policy's years)."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        document.setdefault("components", {}).setdefault("schemas", {})["ErrorBody"] = (
            ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        )
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                _add_refusals(operation)
                for parameter in operation.get("parameters", []):
                    if parameter["in"] == "query" and parameter["name"] in (parameters or {}):
                        parameter["schema"].update((parameters or {})[parameter["name"]])
        schemas = document["components"]["schemas"]
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = document
    return app.openapi_schema


def _add_refusals(operation: dict[str, Any]) -> None:
    statuses = {503}
    if operation.get("security"):
        statuses.add(401)
    if "requestBody" in operation:
        statuses |= {400, 413, 422}
    if operation.get("parameters"):
        statuses.add(422)
    responses = operation.setdefault("responses", {})
    for status in statuses:
        responses.setdefault(str(status), {"description": _MEANING[status]})
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    for status, answer in responses.items():
        if status[0] in "45":
            # A refusal is JSON even where the route answers HTML or CSV, and FastAPI's own
            # 422 shape is not what is answered.
            answer["content"] = body


def serve_docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI from the assets of the ``fastapi-offline`` package, served under
    ``/static/swagger`` by the service itself, so it works on a network without internet."""
    app.mount(
        SWAGGER_ASSETS,
        StaticFiles(directory=str(files("fastapi_offline") / "static")),
        name="swagger-assets",
    )

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=str(app.openapi_url),
            title=f"{app.title} — API",
            swagger_js_url=f"{SWAGGER_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{SWAGGER_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER_ASSETS}/favicon.png",
            # Its default sends the document to validator.swagger.io for a badge.
            swagger_ui_parameters={"validatorUrl": None},
        )
