"""Refusals in Chinese beside English: the rules the shared checks word (credit codes, region
codes, text, yuan amounts, dates) and the schema errors pydantic reports, each in words.

Domain errors carry their Chinese where they are raised; this module words what comes from a
check that speaks English only (``credit_code_problem`` and its kin, pydantic's own types), so
the API, the batch dry run and a spreadsheet import say the same thing the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# The English of the shared checks (services.common.codes, .text, .money and the registry's
# body validators) and its Chinese; groups carry over.
_CHECKS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(english), chinese)
    for english, chinese in (
        (r"must be 18 characters \(GB 32100-2015\)", "须为 18 位（GB 32100-2015）"),
        (
            r"contains characters outside the GB 32100-2015 set: (?P<bad>.+)",
            "含有 GB 32100-2015 字符集以外的字符：{bad}"
            "（只可用数字和除 I、O、S、V、Z 以外的大写字母）",
        ),
        (r"fails the GB 32100-2015 check character", "校验码不符合 GB 32100-2015"),
        (r"must be 6 digits \(GB/T 2260\)", "须为 6 位数字（GB/T 2260 行政区划代码）"),
        (
            r"must not hold the bidirectional control (?P<code>U\+[0-9A-F]+)",
            "不得含有双向控制字符 {code}",
        ),
        (
            r"must not hold (?P<code>U\+[0-9A-F]+), a lone surrogate.*",
            "不得含有 {code}（孤立代理码位，不是字符）",
        ),
        (
            r"must not hold control characters such as (?P<code>U\+[0-9A-F]+) \(it is one line.*",
            "不得含有控制字符（如 {code}）；此项为单行文本，也不得含有制表符或换行",
        ),
        (
            r"must not hold control characters such as (?P<code>U\+[0-9A-F]+)",
            "不得含有控制字符（如 {code}）",
        ),
        (
            r"must be a decimal string in yuan with at most 2 decimals.*",
            '须为以元为单位、最多两位小数的金额文本，如 "1200000.00"',
        ),
        (
            r"must be a decimal string in yuan, e\.g\. .*, not a number",
            '须为以元为单位的金额文本（加引号），如 "1200000.00"，不能是数字',
        ),
        (r"must be greater than zero", "须大于零"),
        (r"must be a date written YYYY-MM-DD", "须为 YYYY-MM-DD 格式的日期"),
        (r"must not be in the future", "不得晚于今天（北京时间）"),
        (
            r"must not contain \"/\".*",
            "不得含有“/”：编号会出现在网址路径中",
        ),
        (
            r"must be letters, digits, .*beginning with a letter or digit",
            "只可含字母、数字、“.”、“_”、“-”或“/”，且以字母或数字开头",
        ),
        (r"must be non-empty text", "不得为空"),
    )
)

# pydantic's own error types, worded from their context.
_TYPES: Mapping[str, str] = {
    "missing": "缺少此字段",
    "extra_forbidden": "不接受此字段",
    "string_type": "须为文本",
    "bool_type": "须为 true 或 false",
    "bool_parsing": "须为 true 或 false",
    "int_type": "须为整数",
    "int_parsing": "须为整数",
    "int_from_float": "须为整数",
    "float_type": "须为数字",
    "float_parsing": "须为数字",
    "list_type": "须为列表",
    "dict_type": "须为对象",
    "model_type": "须为对象",
    "model_attributes_type": "须为对象",
    "string_too_short": "至少 {min_length} 个字符",
    "string_too_long": "最多 {max_length} 个字符",
    "too_short": "至少 {min_length} 项",
    "too_long": "最多 {max_length} 项",
    "greater_than": "须大于 {gt}",
    "greater_than_equal": "须不小于 {ge}",
    "less_than": "须小于 {lt}",
    "less_than_equal": "须不大于 {le}",
    "literal_error": "须为以下之一：{expected}",
    "enum": "须为以下之一：{expected}",
    "string_pattern_mismatch": "格式不符",
    "date_type": "须为 YYYY-MM-DD 格式的日期",
    "date_parsing": "须为 YYYY-MM-DD 格式的日期",
    "date_from_datetime_parsing": "须为 YYYY-MM-DD 格式的日期",
    "date_from_datetime_inexact": "须为日期，不含时间",
    "datetime_type": "须为带时区的时间（ISO 8601）",
    "datetime_parsing": "须为带时区的时间（ISO 8601）",
    "datetime_from_date_parsing": "须为带时区的时间（ISO 8601）",
    "timezone_aware": "须带时区",
    "json_invalid": "JSON 格式错误",
    "json_type": "须为 JSON",
    "union_tag_invalid": "类型标记无效",
    "union_tag_not_found": "缺少类型标记",
    "recursion_loop": "嵌套过深",
    "uuid_parsing": "须为 UUID",
    "uuid_type": "须为 UUID",
    "url_parsing": "须为网址",
    "too_many_errors": "错误过多",
}


def check_in_chinese(message: str) -> str | None:
    """The Chinese of an English rule the shared checks word, or None if it is none of them."""
    for pattern, chinese in _CHECKS:
        found = pattern.fullmatch(message)
        if found:
            return chinese.format(**found.groupdict())
    return None


def schema_error_in_chinese(error: Mapping[str, Any]) -> str:
    """The Chinese of one pydantic error (as ``ValidationError.errors()`` gives it)."""
    kind = str(error.get("type", ""))
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    if kind in ("value_error", "assertion_error"):
        cause = (error.get("ctx") or {}).get("error")
        own = getattr(cause, "message_zh", None)
        if isinstance(own, str):
            return own
        return check_in_chinese(message) or f"不符合要求：{message}"
    template = _TYPES.get(kind)
    if template is None:
        return f"不符合要求：{message}"
    context = {k: _shown(v) for k, v in (error.get("ctx") or {}).items()}
    try:
        return template.format(**context)
    except (KeyError, IndexError):
        return template.split("{")[0].rstrip("：: ") or f"不符合要求：{message}"


def _shown(value: object) -> str:
    # pydantic words a literal's choices as "'a', 'b' or 'c'": the same with Chinese joiners.
    text = str(value)
    return text.replace("' or '", "'、'").replace("', '", "'、'")
