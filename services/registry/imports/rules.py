"""Each refusal of a field or a command as a short rule id with Chinese words beside the
English: the API's own messages, named and translated for the station's clerks."""

from __future__ import annotations

from typing import Any

from services.common.errors import Conflict, DomainError, Forbidden, NotFound

# (words in the English message, rule id, Chinese message): the first that matches names it.
_FIELD_RULES: tuple[tuple[str, str, str], ...] = (
    ("check character", "check_character", "统一社会信用代码校验位错误（GB 32100-2015）"),
    ("must be 18 characters", "credit_code_length", "统一社会信用代码应为 18 位"),
    ("outside the GB 32100-2015 set", "credit_code_characters",
     "统一社会信用代码含非法字符（数字和除 I、O、S、V、Z 外的大写字母）"),
    ("6 digits (GB/T 2260)", "region_code", "地区代码应为 6 位数字（GB/T 2260）"),
    ("in the future", "not_future", "日期不得晚于今天（北京时间）"),
    ("date written YYYY-MM-DD", "date_format", "日期应写作 YYYY-MM-DD"),
    ("valid date", "date_format", "不是有效日期"),
    ("greater than zero", "positive_amount", "金额应大于零"),
    ("decimal string in yuan", "amount_format", "金额应为元，最多两位小数"),
    ("control", "text_characters", "不得含控制字符"),
    ("surrogate", "text_characters", "不得含无效字符"),
    ("must be letters, digits", "number_format", "只能含字母、数字及 . _ - ，且以字母或数字开头"),
    ('must not contain "/"', "number_format", "不得含“/”"),
    ("at most", "max_length", "内容过长"),
    ("valid boolean", "yes_no", "应为“是”或“否”"),
)  # fmt: skip
_TYPES = {
    "missing": ("required", "必填，不能为空"),
    "string_too_short": ("required", "必填，不能为空"),
    "string_too_long": ("max_length", "内容过长（最多 500 字 / 编号最多 64 位）"),
    "too_long": ("max_items", "项目过多（最多 50 个）"),
    "literal_error": ("one_of", "不是允许的取值"),
}


def field_rule(error: dict[str, Any]) -> tuple[str, str, str]:
    """A pydantic error of the API's request model as (rule, message, message_zh)."""
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    kind = str(error.get("type", "invalid"))
    for words, rule, zh in _FIELD_RULES:
        if words in message:
            return rule, message, zh
    rule, zh = _TYPES.get(kind, (kind, f"不符合规则：{message}"))
    return rule, message, zh


# What the registry's domain refuses, by field and words (first match), as rule and Chinese.
_STATE_RULES: tuple[tuple[str | None, str, str, str], ...] = (
    ("issuer_credit_code", "", "party_match", "开票方应为合同卖方"),
    ("recipient_credit_code", "", "party_match", "受票方应为合同买方"),
    ("payer_credit_code", "", "party_match", "付款方应为合同买方"),
    ("payee_credit_code", "", "party_match", "收款方应为合同卖方"),
    ("amount", "invoices not voided", "evidence_over_contract_amount",
     "有效发票合计将超过合同成交额（请先办理变更登记）"),
    ("amount", "transfer proofs not withdrawn", "evidence_over_contract_amount",
     "有效转账凭证合计将超过合同成交额（请先办理变更登记）"),
    (None, "before the contract was signed", "not_before_signing", "日期不得早于合同签订日期"),
    ("signed_on", "after registered_on", "signed_before_registered", "签订日期不得晚于登记日期"),
    ("buyer.credit_code", "differ", "parties_differ", "买方不得与卖方相同"),
    ("technology_amount", "exceed", "technology_within_contract", "技术交易额不得超过合同成交额"),
    ("brokers", "twice", "brokers_unique", "同一技术经纪人不得重复列出"),
)  # fmt: skip


def state_rule(error: DomainError, duplicate_of: int | None) -> tuple[str, str, str]:
    """A domain error of a command as (rule, message, message_zh); ``duplicate_of`` is the row
    of this file that claimed the same number first, if one did."""
    message = error.message
    if isinstance(error, Conflict):
        if "cancelled" in message:
            return "contract_cancelled", message, "合同已注销，不能再登记凭证"
        if duplicate_of is not None:
            return (
                "duplicate_in_file",
                f"{message} (row {duplicate_of} of this file)",
                f"与本文件第 {duplicate_of} 行重复",
            )
        return "duplicate_in_registry", message, "登记簿中已有此编号"
    if isinstance(error, NotFound):
        return "contract_unknown", message, "登记簿和本文件中都没有此登记号的合同"
    if isinstance(error, Forbidden):
        return "own_station", message, "只能以本登记机构的名义登记或录入"
    for field, words, rule, zh in _STATE_RULES:
        if (field is None or error.field == field) and words in message:
            return rule, message, zh
    return "invalid", message, error.message_zh or f"不符合规则：{message}"
