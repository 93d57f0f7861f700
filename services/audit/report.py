"""The evaluation report: one streaming pass over the history, then figures, findings and files.

The pass verifies the tamper-evident chain and folds the same envelopes into the facts, so
memory holds the facts of the contracts and nothing that grows with the log. A broken chain
stops the verification, not the figures: the rest of the log is still read and reported, under
the verdict that says where the chain broke.

Written: ``report.html`` (one self-contained page: inline CSS and SVG, no script, no network),
``figures.json`` and ``figures.csv`` (the same figures), and ``findings.csv``.
"""

from __future__ import annotations

import csv
import html
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from services.audit.figures import (
    ACHIEVEMENT_FIRST_YEAR,
    ACHIEVEMENT_LAST_YEAR,
    BROKER_TARGET,
    BROKER_TARGET_YEAR,
    CATEGORY_LABELS,
    TURNOVER_TARGETS_FEN,
    compute_figures,
    figure_rows,
    report_years,
)
from services.audit.findings import (
    EVIDENCE_GRACE_DAYS,
    EVIDENCE_MIN_SHARE,
    KIND_LABELS,
    LATE_AFTER_DAYS,
    Finding,
    LogWatch,
    history_findings,
)
from services.audit.sources import LogSource
from services.audit.verify import DEFAULT_CHECKPOINT_EVERY, Verdict, verify_log
from services.common.envelope import format_instant
from services.common.money import format_fen
from services.common.policy.facts import FactsBuilder
from services.common.policy.model import CATEGORIES, Policy
from services.common.spreadsheet import safe_cell

REPORT_HTML = "report.html"
FIGURES_JSON = "figures.json"
FIGURES_CSV = "figures.csv"
FINDINGS_CSV = "findings.csv"
MAX_UNREADABLE = 100  # a log this damaged has said enough
MAX_FINDINGS_SHOWN = 2000  # rows on the page; findings.csv holds them all


@dataclass(frozen=True)
class AuditReport:
    """The report's content: verdict, figures and findings, and what they were computed from."""

    year: int
    verdict: Verdict
    figures: dict[str, Any]
    findings: list[Finding]
    position: int
    policy_version: str
    generated_at: str
    source: str


def audit_report(
    source: LogSource,
    year: int,
    policy: Policy,
    *,
    trusted: dict[str, Any] | None = None,
    described_as: str = "",
    progress: Callable[[int], None] = lambda n: None,
    checkpoint_every: int | None = DEFAULT_CHECKPOINT_EVERY,
    public_key_pem: str | None = None,
) -> AuditReport:
    """Verify the history and compute the evaluation figures and findings for ``year``.

    ``checkpoint_every`` and ``public_key_pem`` (default: the source's key) as for
    :func:`~services.audit.verify.verify_log`.
    """
    report_years(policy, year)  # refuse a year with nothing in force before reading the log
    builder = FactsBuilder()
    watch = LogWatch()
    unreadable: list[Finding] = []

    def folded() -> Iterator[dict[str, Any]]:
        for envelope in source.envelopes():
            try:
                builder.apply(envelope)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                if len(unreadable) < MAX_UNREADABLE:
                    unreadable.append(_unreadable(envelope, exc))
            watch.observe(envelope)
            yield envelope

    checkpoints = source.checkpoints()  # first: a live source then reads the log as of them
    stream = folded()
    verdict = verify_log(
        stream,
        checkpoints,
        public_key_pem if public_key_pem is not None else source.public_key_pem(),
        trusted,
        progress,
        checkpoint_every=checkpoint_every,
        manifest=source.manifest(),
    )
    for _ in stream:  # verification stopped at a break: the figures still need the rest
        pass
    facts = builder.facts()
    findings = history_findings(facts, watch, policy, date(year, 12, 31))
    if not verdict.ok:
        findings.insert(0, _chain_break(verdict))
    return AuditReport(
        year=year,
        verdict=verdict,
        figures=compute_figures(facts, year, policy),
        findings=[*findings, *unreadable],
        position=facts.position,
        policy_version=policy.version,
        generated_at=format_instant(datetime.now(UTC)),
        source=described_as,
    )


def _chain_break(verdict: Verdict) -> Finding:
    return Finding("chain_break", "", verdict.summary(), verdict.position)


def _unreadable(envelope: Any, exc: Exception) -> Finding:
    position = envelope.get("position") if isinstance(envelope, dict) else None
    subject = envelope.get("subject") if isinstance(envelope, dict) else None
    return Finding(
        "unreadable_event",
        str(subject or ""),
        f"the entry cannot be applied to the facts ({type(exc).__name__}: {exc})",
        position if isinstance(position, int) else None,
    )


# -- JSON and CSV ------------------------------------------------------------------------------


def findings_by_kind(findings: list[Finding]) -> dict[str, int]:
    """How many findings of each kind (every kind listed, zero included)."""
    counts = dict.fromkeys(KIND_LABELS, 0)
    for finding in findings:
        counts[finding.kind] += 1
    return counts


def report_json(report: AuditReport, *, with_findings: bool = False) -> dict[str, Any]:
    """The report as JSON: what it covers, the chain's verdict, the figures, finding counts."""
    body: dict[str, Any] = {
        "report_year": report.year,
        "generated_at": report.generated_at,
        "source": report.source,
        "policy_version": report.policy_version,
        "position": report.position,
        "verdict": report.verdict.as_json(),
        **report.figures,
        "findings_by_kind": findings_by_kind(report.findings),
    }
    if with_findings:
        body["findings"] = [f.as_json() for f in report.findings]
    return body


def write_report(report: AuditReport, folder: Path) -> dict[str, Path]:
    """Write the page, the figures (JSON, CSV) and the findings (CSV) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / name for name in (REPORT_HTML, FIGURES_JSON, FIGURES_CSV, FINDINGS_CSV)}
    paths[REPORT_HTML].write_text(render_html(report), "utf-8")
    paths[FIGURES_JSON].write_text(
        json.dumps(report_json(report), ensure_ascii=False, indent=2) + "\n", "utf-8"
    )
    # UTF-8 with BOM, so spreadsheets read the Chinese labels.
    with paths[FIGURES_CSV].open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["figure", "year", "key", "measure", "value"])
        for row in figure_rows(report.figures):
            writer.writerow([_csv_value(v) for v in row])
    with paths[FINDINGS_CSV].open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["registration_no", "kind", "label", "label_en", "detail", "position"])
        for finding in report.findings:
            f = finding.as_json()
            keys = ("registration_no", "kind", "label", "label_en", "detail", "position")
            writer.writerow([_csv_value(f[k]) for k in keys])
    return paths


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return safe_cell(str(value))  # no cell an auditor opens may run as a formula


# -- the page ----------------------------------------------------------------------------------

COLOURS = {
    "turnover": "#2f6f9f",
    "seller": "#2f6f9f",
    "buyer": "#d9822b",
    "absorption": "#2f6f9f",
    "output": "#3a9b6b",
    "broker": "#d9822b",
    "brokers": "#6a5acd",
    "achievements": "#3a9b6b",
    "target": "#c0392b",
}

CSS = """
:root { --ink: #1d2733; --muted: #5d6b7a; --line: #d8dee6; --ok: #1e7d4f; --bad: #b3261e; }
* { box-sizing: border-box; }
body { margin: 0; background: #f4f6f9; color: var(--ink);
  font: 15px/1.55 "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", "Helvetica Neue",
  Arial, sans-serif; }
main { max-width: 1080px; margin: 0 auto; padding: 28px 32px 60px; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; }
h1 small, h2 small, th small { font-weight: normal; color: var(--muted); }
h1 small { display: block; font-size: 17px; }
h2 { font-size: 20px; margin: 36px 0 8px; padding-top: 12px; border-top: 2px solid var(--line); }
.meta { color: var(--muted); font-size: 13px; margin: 6px 0 18px; }
.verdict { padding: 14px 18px; border-radius: 6px; margin: 14px 0 20px; font-size: 15px; }
.verdict strong { font-size: 17px; }
.verdict.ok { background: #e6f4ec; border-left: 6px solid var(--ok); }
.verdict.bad { background: #fbe9e7; border-left: 6px solid var(--bad); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(190px, 1fr)); gap: 12px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; }
.card .label { font-size: 13px; color: var(--muted); }
.card .value { font-size: 22px; font-weight: 600; }
.card .note { font-size: 12px; color: var(--muted); }
.met { color: var(--ok); font-weight: 600; }
.unmet { color: var(--bad); font-weight: 600; }
table { border-collapse: collapse; width: 100%; margin: 10px 0; font-size: 13.5px; }
th, td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: right;
  vertical-align: top; }
th { background: #f0f3f7; font-weight: 600; }
th:first-child, td:first-child, th.text, td.text { text-align: left; }
td.detail { text-align: left; font-size: 12.5px; }
.note { color: var(--muted); font-size: 13px; }
svg { display: block; max-width: 100%; height: auto; margin: 8px 0; }
svg text { font-family: inherit; fill: var(--ink); }
"""


def render_html(report: AuditReport) -> str:
    """The report as one self-contained HTML page."""
    f = report.figures
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>技术转移体系建设评估报告 {report.year} · Evaluation report</title>",
        f"<style>{CSS}</style></head><body><main>",
        f"<h1>平顶山市技术转移体系建设 · 第三方评估报告 {report.year}"
        "<small>Pingdingshan technology transfer system: third-party evaluation report"
        "</small></h1>",
        _meta(report),
        _verdict(report.verdict),
        _summary(report),
        _turnover_section(f),
        _regions_section(f),
        _subsidies_section(f),
        _brokers_section(f),
        _achievements_section(f),
        _findings_section(report.findings),
        _notes(),
        "</main></body></html>",
    ]
    return "\n".join(parts) + "\n"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _yuan(amount: str) -> str:
    """A yuan string with thousands separators: 1234567.00 → 1,234,567.00."""
    whole, _, cents = amount.partition(".")
    sign = "-" if whole.startswith("-") else ""
    return f"{sign}{int(whole.lstrip('-')):,}.{cents or '00'}"


def _yi(amount: str) -> str:
    """Yuan as 亿元 (hundreds of millions) with two decimals."""
    return f"{Decimal(amount) / Decimal(100_000_000):,.2f}"


def _percent(share: str | None) -> str:
    return "—" if share is None else f"{Decimal(share) * 100:.2f}%"


def _met(met: bool | None) -> str:
    if met is None:
        return '<span class="note">未到期 not yet due</span>'
    return (
        '<span class="met">✔ 达标 met</span>'
        if met
        else '<span class="unmet">✘ 未达标 not met</span>'
    )


def _meta(report: AuditReport) -> str:
    years = report.figures["years"]
    return (
        f'<p class="meta">覆盖年度 Years covered: {years[0]}–{years[-1]} · '
        f"日志位置 Log position: {report.position:,} · 政策 Policy: {_e(report.policy_version)} · "
        f"来源 Source: {_e(report.source or '—')} · 生成于 Generated: {_e(report.generated_at)}</p>"
    )


def _verdict(verdict: Verdict) -> str:
    if verdict.ok:
        return (
            '<div class="verdict ok"><strong>✔ 防篡改校验通过 · '
            "Tamper-evident chain verified</strong>"
            f"<br>{verdict.checked:,} entries to position {verdict.last_position:,}; "
            f"{verdict.checkpoints_verified} signed checkpoints verified; Merkle root "
            f"<code>{_e(verdict.root_hash)}</code><br>{_e(verdict.coverage())}</div>"
        )
    label = "未能证明" if verdict.unproven else "检测到篡改"
    return (
        f'<div class="verdict bad"><strong>✘ {label} · {_e(verdict.headline())} at '
        f"{_e(verdict.where())}</strong><br>{_e(verdict.summary())}<br>The figures below are "
        "computed from the log as it reads and cannot be trusted beyond that point.</div>"
    )


def _card(label: str, value: str, note: str) -> str:
    return (
        f'<div class="card"><div class="label">{label}</div><div class="value">{value}</div>'
        f'<div class="note">{note}</div></div>'
    )


def _summary(report: AuditReport) -> str:
    f = report.figures
    last = f["turnover"][-1]
    brokers = f["brokers"][-1]
    target = f["achievements"]["target"]
    subsidies = f["subsidies"][-1]
    due = [t for t in f["turnover"] if t["target"] is not None]
    turnover_note = (
        f"target {_yi(due[-1]['target'])} 亿元 in {due[-1]['year']} · {_met(due[-1]['met'])}"
        if due
        else f"{last['contracts']:,} contracts"
    )
    return (
        '<div class="cards">'
        + "".join(
            [
                _card(
                    f"技术合同成交额 {last['year']}<br>Contract turnover",
                    f"{_yi(last['amount'])} 亿元",
                    turnover_note,
                ),
                _card(
                    f"技术经纪人备案 (累计) {brokers['year']}<br>Brokers filed, cumulative",
                    f"{brokers['filed']:,}",
                    f"target ≥{BROKER_TARGET} by {BROKER_TARGET_YEAR}",
                ),
                _card(
                    f"高校院所成果本地转化 {target['first_year']}–{target['last_year']}"
                    "<br>Achievements transformed locally",
                    f"{target['counted']:,}",
                    f"target ≥{target['contracts']} contracts · {_met(target['met'])}",
                ),
                _card(
                    f"补助 {subsidies['year']}<br>Subsidies",
                    f"{_yuan(subsidies['total'])} 元",
                    f"{_percent(subsidies['share'])} of turnover",
                ),
                _card(
                    "审计发现<br>Findings",
                    f"{len(report.findings):,}",
                    "see the list at the end",
                ),
            ]
        )
        + "</div>"
    )


def _turnover_section(f: dict[str, Any]) -> str:
    rows = f["turnover"]
    chart = bar_chart(
        [str(r["year"]) for r in rows],
        [("成交额 turnover", COLOURS["turnover"], [_to_yi(r["amount"]) for r in rows])],
        unit="亿元 · 100 million CNY",
        markers=[
            (i, _to_yi(r["target"]), f"目标 target {_yi(r['target'])}")
            for i, r in enumerate(rows)
            if r["target"] is not None
        ],
    )
    targets = ", ".join(
        f"≥{_yi(format_fen(fen))} 亿元 in {y}" for y, fen in sorted(TURNOVER_TARGETS_FEN.items())
    )
    table = _table(
        [
            "年度<br><small>Year</small>",
            "合同数<br><small>Contracts</small>",
            "成交额 (元)<br><small>Turnover (CNY)</small>",
            "目标 (元)<br><small>Target</small>",
            "达标<br><small>Met</small>",
            "已注销 (不计)<br><small>Cancelled, excluded</small>",
        ],
        [
            [
                r["year"],
                f"{r['contracts']:,}",
                _yuan(r["amount"]),
                _yuan(r["target"]) if r["target"] else "—",
                _met(r["met"]) if r["target"] else "",
                f"{r['cancelled_contracts']:,} · {_yuan(r['cancelled_amount'])}",
            ]
            for r in rows
        ],
    )
    return (
        "<h2>1. 技术合同成交额 <small>Technology contract turnover per year</small></h2>"
        f'<p class="note">Σ contract amount (技术合同成交额, as last amended) of the contracts '
        f"registered in the year; cancelled contracts are excluded (注销登记 withdraws the "
        f"registration) and shown apart. Plan targets: {targets}.</p>{chart}{table}"
    )


def _regions_section(f: dict[str, Any]) -> str:
    regions = f["regions"]
    years = f["years"]
    span = f"{years[0]}–{years[-1]}"
    chart = bar_chart(
        [f"{r['name']}\n{r['name_en'].split(' ')[0]}" for r in regions],
        [
            ("输出 as seller", COLOURS["seller"], [_to_yi(r["seller_amount"]) for r in regions]),
            ("吸纳 as buyer", COLOURS["buyer"], [_to_yi(r["buyer_amount"]) for r in regions]),
        ],
        unit="亿元 · 100 million CNY",
        width=1000,
        value_labels=False,
    )
    header = ["县市区<br><small>County / district</small>", "代码<br><small>Code</small>"]
    for y in years:
        header += [f"{y} 输出<br><small>seller</small>", f"{y} 吸纳<br><small>buyer</small>"]
    header += [f"{span} 输出<br><small>seller</small>", f"{span} 吸纳<br><small>buyer</small>"]
    body = []
    for r in regions:
        row: list[Any] = [f"{_e(r['name'])} <small>{_e(r['name_en'])}</small>", r["region_code"]]
        for y in r["years"]:
            row += [_yuan(y["seller_amount"]), _yuan(y["buyer_amount"])]
        row += [_yuan(r["seller_amount"]), _yuan(r["buyer_amount"])]
        body.append(row)
    return (
        "<h2>2. 各县市区技术合同成交额 <small>Turnover per county / district</small></h2>"
        f'<p class="note">Contract amounts (CNY) of local parties by region code, as seller '
        f"(技术输出) and as buyer (技术吸纳); cancelled contracts excluded. Chart: {span} "
        f"totals.</p>{chart}{_table(header, body, small=True)}"
    )


def _subsidies_section(f: dict[str, Any]) -> str:
    rows = f["subsidies"]
    chart = bar_chart(
        [str(r["year"]) for r in rows],
        [
            (
                f"{CATEGORY_LABELS[c][0]} {CATEGORY_LABELS[c][1]}",
                COLOURS[c],
                [_to_wan(r["categories"][c]["entitlement"]) for r in rows],
            )
            for c in CATEGORIES
        ],
        unit="万元 · 10 thousand CNY",
        stacked=True,
        top_labels=[f"{_percent(r['share'])} of turnover" for r in rows],
    )
    header = ["年度<br><small>Turnover year</small>"]
    for c in CATEGORIES:
        zh, en = CATEGORY_LABELS[c]
        header.append(f"{zh} (元)<br><small>{en}: beneficiaries · CNY · share</small>")
    header += ["合计 (元)<br><small>Total</small>", "占成交额<br><small>Share of turnover</small>"]
    body = []
    for r in rows:
        row: list[Any] = [r["year"]]
        for c in CATEGORIES:
            v = r["categories"][c]
            row.append(
                f"{v['beneficiaries']:,} · {_yuan(v['entitlement'])} · {_percent(v['share'])}"
            )
        row += [_yuan(r["total"]), _percent(r["share"])]
        body.append(row)
    return (
        "<h2>3. 补助 <small>Subsidies by category and year, and their share of turnover</small>"
        '</h2><p class="note">Entitlements the policy engine computes for each turnover year '
        "from the whole log (paid in the following year); share = entitlements ÷ turnover "
        f"registered in the year.</p>{chart}{_table(header, body)}"
    )


def _brokers_section(f: dict[str, Any]) -> str:
    rows = f["brokers"]
    chart = bar_chart(
        [str(r["year"]) for r in rows],
        [("累计备案 filed, cumulative", COLOURS["brokers"], [float(r["filed"]) for r in rows])],
        unit="人 · brokers",
        markers=[
            (i, float(r["target"]), f"目标 target {r['target']}")
            for i, r in enumerate(rows)
            if r["target"] is not None
        ],
        integer=True,
    )
    table = _table(
        [
            "年度<br><small>Year</small>",
            "当年备案<br><small>Filed in year</small>",
            "累计<br><small>Cumulative</small>",
            "目标<br><small>Target</small>",
            "达标<br><small>Met</small>",
        ],
        [
            [
                r["year"],
                f"{r['filed_in_year']:,}",
                f"{r['filed']:,}",
                r["target"] or "—",
                _met(r["met"]) if r["target"] else "",
            ]
            for r in rows
        ],
    )
    return (
        "<h2>4. 技术经纪人备案 <small>Technology brokers filed</small></h2>"
        f'<p class="note">Brokers filed (技术经纪人备案) by 31 Dec of each year, counted from the '
        f"start; target ≥{BROKER_TARGET} by {BROKER_TARGET_YEAR}.</p>{chart}{table}"
    )


def _achievements_section(f: dict[str, Any]) -> str:
    a = f["achievements"]
    rows = a["years"]
    target = a["target"]
    chart = bar_chart(
        [str(r["year"]) for r in rows],
        [("合同数 contracts", COLOURS["achievements"], [float(r["contracts"]) for r in rows])],
        unit="份 · contracts",
        integer=True,
    )
    progress = progress_bar(
        target["counted"],
        target["contracts"],
        f"{target['first_year']}–{target['last_year']}: {target['counted']:,} / "
        f"{target['contracts']} contracts",
    )
    table = _table(
        [
            "年度<br><small>Year</small>",
            "合同数<br><small>Contracts</small>",
            "成交额 (元)<br><small>Amount (CNY)</small>",
        ],
        [[r["year"], f"{r['contracts']:,}", _yuan(r["amount"])] for r in rows],
    )
    return (
        "<h2>5. 高校院所科技成果本地转化 <small>Achievements of universities and institutes "
        'transformed locally</small></h2><p class="note">Contracts whose seller is a university, '
        "research institute or new R&amp;D institution and whose buyer is local, by year of "
        f"registration; cancelled ones excluded. Target ≥{target['contracts']} contracts "
        f"{ACHIEVEMENT_FIRST_YEAR}–{ACHIEVEMENT_LAST_YEAR}: {_met(target['met'])}</p>"
        f"{progress}{chart}{table}"
    )


def _findings_section(findings: list[Finding]) -> str:
    counts = findings_by_kind(findings)
    summary = _table(
        ["类别<br><small>Kind</small>", "数量<br><small>Count</small>"],
        [
            [f"{KIND_LABELS[k][0]} <small>{_e(KIND_LABELS[k][1])}</small>", f"{n:,}"]
            for k, n in counts.items()
        ],
    )
    shown = findings[:MAX_FINDINGS_SHOWN]
    rows = "".join(
        f'<tr><td class="text">{_e(x.registration_no) or "—"}</td>'
        f'<td class="text">{KIND_LABELS[x.kind][0]}<br><small>{_e(KIND_LABELS[x.kind][1])}'
        f'</small></td><td class="detail">{_e(x.detail)}</td>'
        f"<td>{'' if x.position is None else x.position}</td></tr>"
        for x in shown
    )
    more = (
        f'<p class="note">{len(findings) - len(shown):,} more in findings.csv.</p>'
        if len(findings) > len(shown)
        else ""
    )
    listing = (
        '<table><thead><tr><th class="text">登记号<br><small>Registration no.</small></th>'
        '<th class="text">类别<br><small>Kind</small></th>'
        '<th class="text">说明<br><small>Detail</small></th>'
        f"<th>位置<br><small>Log position</small></th></tr></thead><tbody>{rows}</tbody></table>"
        if findings
        else '<p class="note">None. 无。</p>'
    )
    return f"<h2>6. 审计发现 <small>Findings</small></h2>{summary}{listing}{more}"


def _notes() -> str:
    return (
        '<h2>说明 <small>Notes</small></h2><ul class="note">'
        "<li>Amounts are CNY (元); 亿元 = 100 million CNY, 万元 = 10 thousand CNY.</li>"
        f"<li>Evidence far from the contract amount: paid and invoiced (min of both) by 31 Dec of "
        f"the report year below {EVIDENCE_MIN_SHARE.numerator}/{EVIDENCE_MIN_SHARE.denominator} "
        f"of the contract amount, for contracts registered more than {EVIDENCE_GRACE_DAYS} days "
        "before it.</li>"
        f"<li>Recorded late: recorded (China time) more than {LATE_AFTER_DAYS} days after the "
        "event's own date (registered, issued, paid, voided, withdrawn, amended, cancelled, "
        "filed on); one finding per contract or broker, naming the worst.</li>"
        "<li>Cancelled after a payout: the cancellation was recorded after 31 Dec of a turnover "
        "year whose entitlements (paid from 1 Jan of the next year) the contract had fed.</li>"
        "<li>Findings concern contracts registered by 31 Dec of the report year; evidence and "
        "cancellations are as the whole log records them.</li></ul>"
    )


def _table(header: list[str], rows: list[list[Any]], small: bool = False) -> str:
    style = ' style="font-size:12px"' if small else ""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table{style}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _to_yi(amount: str) -> float:
    return float(Decimal(amount) / Decimal(100_000_000))


def _to_wan(amount: str) -> float:
    return float(Decimal(amount) / Decimal(10_000))


# -- SVG charts --------------------------------------------------------------------------------


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 × 10^k at or above ``value`` (1 for nothing)."""
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(value))
    return next(step * magnitude for step in (1, 2, 2.5, 5, 10) if step * magnitude >= value)


def _text_width(text: str, size: float) -> float:
    """About how wide ``text`` sets at ``size`` px: CJK characters are square, Latin narrower."""
    return sum(size if ord(c) >= 0x2E80 else size * 0.58 for c in text)


def _number(value: float, integer: bool) -> str:
    if integer:
        return f"{round(value):,}"
    return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"


def bar_chart(
    categories: list[str],
    series: list[tuple[str, str, list[float]]],
    *,
    unit: str,
    markers: list[tuple[int, float, str]] | None = None,
    stacked: bool = False,
    top_labels: list[str] | None = None,
    width: int = 760,
    height: int = 300,
    value_labels: bool = True,
    integer: bool = False,
) -> str:
    """A bar chart as inline SVG: grouped or stacked series, optional target markers."""
    left, right, top, bottom = 64, 16, 34, 58
    plot_w, plot_h = width - left - right, height - top - bottom
    markers = markers or []
    totals = (
        [sum(s[2][i] for s in series) for i in range(len(categories))]
        if stacked
        else [max((s[2][i] for s in series), default=0.0) for i in range(len(categories))]
    )
    step = _nice_ceiling(max([*totals, *(m[1] for m in markers), 0.0]) * 1.08 / 4)
    if integer:
        step = float(max(1, math.ceil(step)))
    peak = 4 * step
    slot = plot_w / max(1, len(categories))
    bars_per_slot = 1 if stacked else len(series)
    bar_w = min(56.0, slot * 0.7 / bars_per_slot)

    def y(value: float) -> float:
        return top + plot_h - plot_h * value / peak

    out = [f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img">']
    for tick in range(5):
        value = peak * tick / 4
        ty = y(value)
        out.append(
            f'<line x1="{left}" y1="{ty:.1f}" x2="{width - right}" y2="{ty:.1f}" '
            f'stroke="#e3e8ee" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{ty + 4:.1f}" font-size="11" text-anchor="end">'
            f"{_number(value, integer)}</text>"
        )
    out.append(f'<text x="{left}" y="14" font-size="11" fill="#5d6b7a">{_e(unit)}</text>')
    for i, name in enumerate(categories):
        cx = left + slot * (i + 0.5)
        base = top + plot_h
        for j, (_label, colour, values) in enumerate(series):
            value = values[i]
            if stacked:
                x = cx - bar_w / 2
                bar_top = y(value + sum(s[2][i] for s in series[:j]))
                bar_bottom = y(sum(s[2][i] for s in series[:j]))
            else:
                x = cx - bar_w * len(series) / 2 + j * bar_w
                bar_top, bar_bottom = y(value), base
            h = max(0.0, bar_bottom - bar_top)
            out.append(
                f'<rect x="{x:.1f}" y="{bar_top:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{_e(name.splitlines()[0])} {_e(_label)}: '
                f"{_number(value, integer)}</title></rect>"
            )
            if value_labels and not stacked and value > 0:
                out.append(
                    f'<text x="{x + bar_w / 2 - 1:.1f}" y="{bar_top - 4:.1f}" font-size="11" '
                    f'text-anchor="middle">{_number(value, integer)}</text>'
                )
        if stacked and top_labels:
            out.append(
                f'<text x="{cx:.1f}" y="{y(totals[i]) - 5:.1f}" font-size="11" '
                f'text-anchor="middle">{_e(top_labels[i])}</text>'
            )
        for k, line in enumerate(name.splitlines()):
            out.append(
                f'<text x="{cx:.1f}" y="{base + 16 + 13 * k:.1f}" font-size="{12 - k}" '
                f'text-anchor="middle">{_e(line)}</text>'
            )
    for index, value, label in markers:
        cx = left + slot * (index + 0.5)
        my = y(value)
        half = max(bar_w * bars_per_slot / 2 + 8, slot * 0.42)
        # The label ends left of the bars, clear of their value labels; a white halo keeps it
        # legible over grid lines.
        out.append(
            f'<line x1="{cx - half:.1f}" y1="{my:.1f}" x2="{cx + half:.1f}" y2="{my:.1f}" '
            f'stroke="{COLOURS["target"]}" stroke-width="2.5" stroke-dasharray="6 3"/>'
            f'<text x="{cx - bar_w * bars_per_slot / 2 - 4:.1f}" y="{my - 5:.1f}" '
            f'font-size="11" text-anchor="end" paint-order="stroke" stroke="#fff" '
            f'stroke-width="3" style="fill:{COLOURS["target"]}">{_e(label)}</text>'
        )
    out.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" '
        'stroke="#8a96a3"/>'
    )
    legend_x = float(width - right)
    for label, colour, _values in reversed(series):
        text_w = _text_width(label, 11) + 24
        legend_x -= text_w
        out.append(
            f'<rect x="{legend_x:.1f}" y="5" width="11" height="11" fill="{colour}"/>'
            f'<text x="{legend_x + 15:.1f}" y="15" font-size="11">{_e(label)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def progress_bar(value: int, target: int, label: str, width: int = 760) -> str:
    """A horizontal progress bar towards a target, as inline SVG."""
    share = min(1.0, value / target) if target else 1.0
    colour = "#1e7d4f" if value >= target else COLOURS["achievements"]
    inner = (width - 2) * share
    return (
        f'<svg viewBox="0 0 {width} 44" width="{width}" '
        f'height="44" role="img"><rect x="1" y="14" width="{width - 2}" height="18" rx="4" '
        f'fill="#e8edf2"/><rect x="1" y="14" width="{inner:.1f}" height="18" rx="4" '
        f'fill="{colour}"/><text x="4" y="10" font-size="11">{_e(label)} '
        f"({100 * value / target if target else 100:.0f}%)</text></svg>"
    )
