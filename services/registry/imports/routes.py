"""The import routes: upload a spreadsheet (dry run or commit), download the template."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, WithJsonSchema

from services.common.tokens import Principal
from services.common.web.auth import require_roles
from services.common.web.openapi import ErrorBody
from services.registry.application import Registry
from services.registry.imports import errors_workbook, run_import, template_xlsx
from services.registry.imports.reading import MAX_BYTES

router = APIRouter(prefix="/v1")

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# The most a request to /v1/imports may carry: the file's limit and the multipart framing.
UPLOAD_LIMIT = MAX_BYTES + 64 * 1024
SheetName = Literal["合同", "发票", "转账凭证", "contracts", "invoices", "transfer_proofs"]
Writer = Annotated[Principal, Depends(require_roles("station", "bureau"))]

_PROBLEM_EXAMPLE = {
    "sheet": "合同",
    "row": 5,
    "column": "卖方统一社会信用代码",
    "field": "seller.credit_code",
    "rule": "check_character",
    "message": "fails the GB 32100-2015 check character",
    "message_zh": "统一社会信用代码校验位错误（GB 32100-2015）",
}


class ImportProblemPublic(BaseModel):
    """导入问题 One bad cell or row."""

    sheet: str = Field(description="工作表 合同, 发票 or 转账凭证", examples=["合同"])
    row: int = Field(description="行号 The row as Excel numbers it (header counts)", examples=[5])
    column: str = Field(
        description="列 The column header as in the file; empty for a whole row",
        examples=["卖方统一社会信用代码"],
    )
    field: str = Field(description="字段 The API field", examples=["seller.credit_code"])
    rule: str = Field(description="规则 Short rule id", examples=["check_character"])
    message: str = Field(description="说明 The rule broken, in English", examples=["fails …"])
    message_zh: str = Field(
        description="中文说明 The rule broken, in Chinese", examples=["校验位错误"]
    )


class ImportReportPublic(BaseModel):
    """导入报告 What a dry run found, or what a commit stored."""

    file_sha256: str = Field(
        description="文件哈希 SHA-256 of the uploaded file", examples=["0" * 64]
    )
    rows: int = Field(description="行数 Data rows read, all sheets", examples=[3])
    valid: int = Field(description="无误行数 Rows without a problem", examples=[2])
    errors: list[ImportProblemPublic] = Field(
        description="错误 Every problem found, not the first", examples=[[_PROBLEM_EXAMPLE]]
    )
    warnings: list[ImportProblemPublic] = Field(
        description="提示 Things to look at that do not stop the import", examples=[[]]
    )
    stored: bool = Field(description="已导入 True once a commit stored every row", examples=[False])
    events: int = Field(description="事件数 Events stored", examples=[0])
    first_position: int | None = Field(
        description="首位置 Log position of the first event stored", examples=[None]
    )
    last_position: int | None = Field(
        description="末位置 Log position of the last event stored", examples=[None]
    )


_FILE_WORDS = "文件 The XLSX workbook (sheets 合同, 发票, 转账凭证) or a CSV of one sheet"


def _registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


@router.post(
    "/imports",
    response_model=ImportReportPublic,
    responses={
        200: {
            "description": "试导入报告 The dry run's report (or, with errors=xlsx, the workbook "
            "with bad cells marked)",
            "content": {XLSX: {}},
        },
        201: {"description": "已导入 Every row stored", "model": ImportReportPublic},
        403: {"model": ErrorBody, "description": "无权限 Only stations and the bureau import"},
        413: {
            "model": ErrorBody,
            "description": "文件过大 The file is over 20 MiB, or a sheet (合同, 发票 or 转账凭证) "
            "holds more than 50,000 data rows",
        },
        422: {
            "model": ErrorBody,
            "description": "无效 A commit refused because rows have problems (error "
            "invalid_import, nothing stored; with the report's rows, valid, errors and "
            "warnings), or a file that is no spreadsheet, or a parameter out of its rules",
        },
    },
)
async def import_spreadsheet(
    request: Request,
    who: Writer,
    file: Annotated[
        UploadFile,
        File(description=_FILE_WORDS),
        WithJsonSchema(
            {
                "type": "string",
                "contentMediaType": "application/octet-stream",
                "description": _FILE_WORDS,
                "examples": ["登记号,发票号码,开票日期,金额（元）"],
            }
        ),
    ],
    dry_run: Annotated[
        bool,
        Query(
            description="试导入 Check only (true, the default) or store (false)", examples=[True]
        ),
    ] = True,
    sheet: Annotated[
        SheetName | None,
        Query(
            description="工作表 The sheet a CSV holds, or the one sheet of a workbook to read: "
            "合同, 发票, 转账凭证 (or contracts, invoices, transfer_proofs)",
            examples=["合同"],
        ),
    ] = None,
    intake: Annotated[
        Literal["live", "backlog"],
        Query(
            description="录入方式 live, or backlog: a history loaded after the fact (补录)",
            examples=["live"],
        ),
    ] = "live",
    errors: Annotated[
        Literal["xlsx"] | None,
        Query(
            description="错误标注 xlsx: answer a dry run with the workbook, bad cells marked",
            examples=["xlsx"],
        ),
    ] = None,
) -> Response:
    """Import a station's spreadsheet: a dry run lists every problem by sheet, row and column;
    a commit stores every row in one transaction, or nothing (422 with the same list)."""
    data = await file.read(MAX_BYTES + 1)
    filename = file.filename or ""
    report = await asyncio.to_thread(
        run_import,
        _registry(request),
        who,
        data,
        filename=filename,
        sheet=sheet,
        dry_run=dry_run,
        intake=intake,
    )
    if dry_run and errors == "xlsx":
        marked = await asyncio.to_thread(errors_workbook, data, filename, report)
        return Response(
            marked,
            media_type=XLSX,
            headers={"Content-Disposition": 'attachment; filename="import-errors.xlsx"'},
        )
    body: dict[str, Any] = report.as_json()
    if dry_run:
        return JSONResponse(body)
    if report.stored:
        return JSONResponse(body, status_code=201)
    bad = report.rows - report.valid
    refused = {
        "error": "invalid_import",
        "field": "file",
        "message": f"{len(report.errors)} problems in {bad} of {report.rows} rows: nothing was "
        "stored",
        "message_zh": f"{report.rows} 行中 {bad} 行有 {len(report.errors)} 个问题：未导入任何数据",
        **body,
    }
    return JSONResponse(refused, status_code=422)


@router.get(
    "/imports/template.xlsx",
    response_class=Response,
    responses={200: {"description": "导入模板 The empty template", "content": {XLSX: {}}}},
)
def import_template(who: Writer) -> Response:
    """The empty import template: sheets 合同, 发票, 转账凭证 with their headers, and notes."""
    return Response(
        template_xlsx(),
        media_type=XLSX,
        headers={"Content-Disposition": 'attachment; filename="tcr-import-template.xlsx"'},
    )
