"""A realistic, deterministic history of the city's technology contracts, as batch commands.

Each command is ``{"op": …, "body": …}`` exactly as ``POST /v1/batch`` takes it, and the
commands come in the order they were recorded: every one is valid when applied in order.
The same years, size and seed always give the same commands (one ``random.Random(seed)``, no
clock: "today" is :data:`TODAY`).

What it exercises: contracts of every type between enterprises, universities, institutes and
new R&D institutions of the city's counties and of other provinces; brokers filed early, late
or never; invoices and payments in one to three installments, often across a year end and
sometimes invoiced after payment; voided invoices, withdrawn transfer proofs, amendments,
cancellations, related parties, provincial funding; a few very large contracts whose buyers,
sellers and broker reach the caps; yearly turnover growing from about 754 million yuan toward
the plan's billion at the default size; and finance's payouts of each turnover year, with the
settlements of what changed after them (:mod:`services.demo.payouts`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson

from services.common.money import format_fen, parse_yuan
from services.demo.payouts import with_payouts
from services.demo.population import (
    TODAY,
    BrokerProfile,
    DemoParty,
    Station,
    build_population,
    station_for,
)

DEFAULT_YEARS = range(2020, 2026)
DEFAULT_PER_YEAR = 400
DEFAULT_SEED = 2020

YUAN = 100  # fen
MIN_AMOUNT = 50_000 * YUAN
MAX_AMOUNT = 50_000_000 * YUAN
_STEP = 100 * YUAN  # installments and technology amounts are whole hundreds of yuan
# From this year the demo's stations give each registration a certificate number (登记证明编号,
# ContractRegistered version 2's certificate_no); before it, none.
CERTIFICATES_FROM = 2024

CONTRACT_TYPES = {
    "development": 35,
    "service": 33,
    "transfer": 13,
    "consulting": 10,
    "licensing": 9,
}
TYPE_SUFFIXES = {
    "development": ("技术开发", "联合研发", "关键技术攻关"),
    "transfer": ("专利权转让", "技术秘密转让", "专利申请权转让"),
    "licensing": ("专利实施许可", "技术秘密使用许可"),
    "consulting": ("技术咨询", "可行性论证", "技术路线咨询"),
    "service": ("技术服务", "检测分析服务", "技术培训与指导"),
}
SUBJECTS = {
    "新材料及其应用": (
        "尼龙66切片增韧改性", "己二腈连续化生产工艺", "高性能碳纤维复合材料",
        "锂电池负极材料石墨化",
        "特厚钢板控轧控冷", "超高功率石墨电极", "电子级多晶硅提纯", "工业盐精制与盐穴储能",
        "特种陶瓷釉料配方", "聚碳酸酯改性",
    ),
    "先进制造": (
        "煤矿智能巡检机器人", "高压开关设备绝缘结构优化", "液压支架电液控制系统",
        "矿用防爆电机能效提升",
        "数控机床精度补偿", "智能输送装备", "特高压开关操动机构",
    ),
    "环境保护与资源综合利用": (
        "煤矸石综合利用", "矿井水深度处理回用", "低浓度瓦斯抽采利用", "采煤沉陷区生态修复",
        "焦化废水零排放", "粉煤灰制备新型建材",
    ),
    "新能源与高效节能": (
        "光伏组件清洁机器人", "储能电站热管理系统", "氢燃料电池双极板", "工业余热回收发电",
        "分布式光伏并网控制",
    ),
    "电子信息": (
        "智慧矿山工业互联网平台", "电力设备状态监测系统", "5G智能工厂数据采集",
        "企业数字化管理系统",
        "机器视觉缺陷检测",
    ),
    "生物、医药和医疗器械": (
        "中药材有效成分提取", "医用防护材料", "微生物发酵工艺优化", "便携式检测试剂盒",
    ),
    "农业": (
        "香菇菌种选育", "小麦节水高产栽培", "郏县红牛品种改良", "设施蔬菜水肥一体化",
        "林果病虫害绿色防控",
    ),
    "城市建设与社会发展": (
        "装配式建筑构件", "城市排水管网监测", "老旧小区节能改造", "智慧社区管理平台",
    ),
}  # fmt: skip
PROGRAMMES = (
    "河南省重大科技专项",
    "河南省科技成果转移转化示范项目",
    "河南省高校科技创新人才支持计划",
    "中原英才计划科技创新专项",
)
VOID_REASONS = ("发票信息有误，红字冲销", "购买方名称有误，红冲重开", "开票金额有误")
CANCEL_REASONS = ("经复核不属于技术合同，注销登记", "双方协商解除合同", "合同未实际履行")
LOCAL_BANKS = (
    ("ICBC", "中国工商银行平顶山分行"),
    ("BOC", "中国银行平顶山分行"),
    ("CCB", "中国建设银行平顶山分行"),
    ("ABC", "中国农业银行平顶山分行"),
    ("PDSB", "平顶山银行"),
    ("ZYB", "中原银行平顶山分行"),
)
OUTSIDE_BANKS = (
    ("ICBC", "中国工商银行"),
    ("CCB", "中国建设银行"),
    ("CMB", "招商银行"),
    ("BOCOM", "交通银行"),
)
CITIES = {
    "1101": "北京", "1201": "天津", "1401": "太原", "3101": "上海", "3203": "徐州",
    "3205": "苏州", "3301": "杭州", "3302": "宁波", "3401": "合肥", "4101": "郑州",
    "4103": "洛阳", "4108": "焦作", "4110": "许昌", "4201": "武汉", "4301": "长沙",
    "4403": "深圳", "6101": "西安",
}  # fmt: skip


# -- the yearly figures the demo aims at -------------------------------------------------------


def yearly_target(year: int, per_year: int) -> int:
    """Turnover (fen) the year's contracts add up to: 7.54亿 in 2020 (the city's reported
    figure), growing 6,500万 a year to 10.79亿 in 2025, in proportion to the size asked for."""
    yuan = max(754_000_000 + (year - 2020) * 65_000_000, 100_000_000)
    return yuan * YUAN * per_year // DEFAULT_PER_YEAR


def parse_years(text: str) -> range:
    """``"2020-2025"`` or ``"2024"`` as a range of years."""
    first, _, last = text.partition("-")
    try:
        years = range(int(first), int(last or first) + 1)
    except ValueError:
        raise ValueError(f"years must be written 2020-2025 or 2024, not {text!r}") from None
    if not years or years.start < 2000 or years.stop - 1 > TODAY.year:
        raise ValueError(f"years must run forward, from 2000 to {TODAY.year}, not {text!r}")
    return years


# -- commands waiting for their place in the log -----------------------------------------------


@dataclass(order=True)
class _Pending:
    """A command and the day it was recorded; the log is ordered by that day."""

    day: date
    group: int
    seq: int
    op: str = field(compare=False)
    body: dict[str, Any] = field(compare=False)

    def command(self) -> dict[str, Any]:
        return {"op": self.op, "body": self.body}


class _Picker:
    """Weighted choices over a fixed list, with precomputed cumulative weights."""

    def __init__(self, items: Sequence[DemoParty]) -> None:
        self.items = list(items)
        total = 0.0
        self.cumulative = []
        for item in self.items:
            total += item.weight
            self.cumulative.append(total)

    def pick(self, rng: random.Random, unlike: DemoParty | None = None) -> DemoParty:
        while True:
            party = rng.choices(self.items, cum_weights=self.cumulative)[0]
            if party is not unlike:
                return party


def _weighted(rng: random.Random, table: dict[str, int]) -> str:
    return rng.choices(list(table), weights=list(table.values()))[0]


def _clamp(day: date) -> date:
    return min(day, TODAY)


def _days(n: int) -> timedelta:
    return timedelta(days=n)


@dataclass
class _Deal:
    """A contract before it has a registration number."""

    seller: DemoParty
    buyer: DemoParty
    contract_type: str
    domain: str
    title: str
    amount: int  # fen
    related: bool
    brokers: list[str]
    registered_on: date
    signed_on: date
    flagship: str | None = None  # "absorption" or "output": a very large contract
    station: Station | None = None
    registration_no: str = ""


class HistoryGenerator:
    """Builds the whole history in memory, then hands it out in log order."""

    def __init__(self, years: Sequence[int], per_year: int, seed: int) -> None:
        if per_year < 1:
            raise ValueError("contracts per year must be at least 1")
        self.years = list(years)
        self.per_year = per_year
        self.rng = random.Random(seed)
        self.population = build_population(self.rng, self.years, per_year / DEFAULT_PER_YEAR)
        p = self.population
        self.local_enterprises = _Picker(p.local_enterprises)
        self.local_research = _Picker(p.local_research)
        self.local_others = _Picker(p.local_others)
        self.outside_research = _Picker(p.outside_research)
        self.outside_enterprises = _Picker(p.outside_enterprises)
        self.flagship_buyers = _Picker(p.flagship_buyers)
        self._pending: list[_Pending] = []
        self._group = 0
        self._invoice_counter = self.rng.randint(10_000_000, 19_999_999)
        self._serial_counter = self.rng.randint(1_000_000, 9_999_999)
        self._registration_counters: dict[tuple[str, int], int] = {}
        self._grants = 0  # one-time grants numbered so far

    # -- the whole history -------------------------------------------------------------------

    def commands(self) -> list[dict[str, Any]]:
        for broker in self.population.brokers:
            self._file_broker(broker)
        for year in self.years:
            funded = self._year(year)
            for party in funded:
                self._provincial_funding(party, year)
        self._institutions_and_grants()
        ordered = [(p.day, p.command()) for p in sorted(self._pending)]
        return list(with_payouts(ordered, self.years, TODAY))

    def _next_group(self) -> int:
        self._group += 1
        return self._group

    def _add(self, group: int, day: date, op: str, body: dict[str, Any]) -> None:
        self._pending.append(_Pending(day, group, len(self._pending), op, body))

    # -- bureau filings ------------------------------------------------------------------------

    def _file_broker(self, broker: BrokerProfile) -> None:
        if broker.filed_on is None:
            return
        body = {
            "broker_id": broker.broker_id,
            "name": broker.name,
            "organisation_credit_code": broker.organisation_credit_code,
            "filed_on": broker.filed_on.isoformat(),
        }
        self._add(self._next_group(), broker.filed_on, "file_broker", body)

    def _provincial_funding(self, party: DemoParty, year: int) -> None:
        rng = self.rng
        body = {
            "credit_code": party.credit_code,
            "year": year,
            "programme": rng.choice(PROGRAMMES),
            "amount": format_fen(rng.randint(20, 300) * 10_000 * YUAN),
        }
        day = _clamp(date(year, 1, 1) + _days(rng.randint(150, 340)))
        self._add(self._next_group(), day, "record_provincial_funding", body)

    def _institutions_and_grants(self) -> None:
        """A few demonstration institutions (技术转移示范机构) recognised over the years, the
        provincial ones granted their one-time subsidy a few months later, and some transfer
        and pilot bases granted one (plan §四(四)(五)). From a generator of their own, so that
        the contracts stay the history they always were."""
        rng = random.Random(f"grants/{self.rng.random()}")
        research = self.population.local_research
        enterprises = self.population.local_enterprises
        if not research or not enterprises:
            return
        institutions = rng.sample(research, k=min(len(research), 5))
        # Provincial ones in the first, second and fourth year: short of 3 by 2022.
        plan = [("provincial", 0), ("municipal", 1), ("provincial", 1), ("national", 2),
                ("provincial", 3)]  # fmt: skip
        for n, (party, (level, offset)) in enumerate(zip(institutions, plan, strict=False)):
            if offset >= len(self.years):
                continue
            year = self.years[offset]
            recognised = _clamp(date(year, 1, 1) + _days(rng.randint(60, 240)))
            body = {"credit_code": party.credit_code, "name": f"{party.name}技术转移中心",
                    "level": level, "recognised_on": recognised.isoformat(),
                    "document_no": f"豫科〔{year}〕{10 + n}号"}  # fmt: skip
            self._add(self._next_group(), recognised, "recognise_institution", body)
            if level == "provincial":
                decided = recognised + _days(rng.randint(30, 90))
                self._grant(rng, party, "demonstration_institution", decided, 200_000)
        for year in self.years:
            for programme in ("transfer_base", "pilot_base"):
                party = rng.choice(enterprises if programme == "pilot_base" else research)
                decided = date(year, 1, 1) + _days(rng.randint(90, 330))
                self._grant(rng, party, programme, decided, rng.choice((50_000, 100_000)))

    def _grant(
        self, rng: random.Random, party: DemoParty, programme: str, day: date, yuan: int
    ) -> None:
        if day > TODAY:
            return
        self._grants += 1
        body = {"grant_no": f"YC-{day.year}-{self._grants:03d}", "credit_code": party.credit_code,
                "programme": programme, "amount": format_fen(yuan * YUAN),
                "decided_on": day.isoformat(),
                "document_no": f"平科〔{day.year}〕{rng.randint(1, 99)}号"}  # fmt: skip
        self._add(self._next_group(), day, "decide_grant", body)

    # -- one year of contracts -----------------------------------------------------------------

    def _year(self, year: int) -> list[DemoParty]:
        """Generate the year's contracts; the parties given provincial funding for it."""
        rng = self.rng
        deals: list[_Deal] = []
        flagships = self.per_year >= 5
        if flagships:
            deals += self._flagships(year)
        amounts = self._amounts(year, self.per_year - len(deals), sum(d.amount for d in deals))
        deals += [self._deal(year, amount) for amount in amounts]
        deals.sort(key=lambda d: d.registered_on)
        for deal in deals:
            self._number(deal)
            self._contract(deal)
        # Provincial funding (不重复支持) for a few local universities and institutes; never
        # the output flagship's seller, whose output subsidy the demo wants to see capped.
        spared = {d.seller.credit_code for d in deals if d.flagship == "output"}
        candidates = [p for p in self.population.local_research if p.credit_code not in spared]
        return rng.sample(candidates, k=min(len(candidates), rng.randint(1, 3)))

    def _registration_day(self, year: int, first: int = 3, last: int = 363) -> date:
        """A day of ``year`` between its ``first`` and ``last`` day, and before today."""
        if year == TODAY.year:  # this year's registrations spread over its days so far
            last = min(last, TODAY.timetuple().tm_yday - 2)
            first = min(first, last)
        return date(year, 1, 1) + _days(self.rng.randint(first, last) - 1)

    def _flagships(self, year: int) -> list[_Deal]:
        """Two very large contracts: an outside institute's to a big local firm, through the
        city's busiest broker, and a local university's to a big local firm."""
        rng = self.rng
        p = self.population
        star = p.brokers[0].broker_id
        buyer = self.flagship_buyers.pick(rng)
        seller = self.outside_research.pick(rng)
        registered = self._registration_day(year, 40, 130)
        contract_type = rng.choice(("development", "transfer"))
        absorption = _Deal(
            seller=seller,
            buyer=buyer,
            contract_type=contract_type,
            domain=buyer.sector,
            title=self._title(buyer.sector, contract_type),
            amount=rng.randint(3_600, 4_800) * 10_000 * YUAN,
            related=False,
            brokers=[star],
            registered_on=registered,
            signed_on=registered - _days(rng.randint(10, 40)),
            flagship="absorption",
        )
        university = rng.choice(p.local_universities)
        other_buyer = self.flagship_buyers.pick(rng, unlike=buyer)
        registered = self._registration_day(year, 40, 160)
        output = _Deal(
            seller=university,
            buyer=other_buyer,
            contract_type="development",
            domain=university.sector,
            title=self._title(university.sector, "development"),
            amount=rng.randint(600, 1_200) * 10_000 * YUAN,
            related=False,
            brokers=[],
            registered_on=registered,
            signed_on=registered - _days(rng.randint(5, 30)),
            flagship="output",
        )
        return [absorption, output]

    def _amounts(self, year: int, count: int, fixed: int) -> list[int]:
        """Log-normal amounts between 50,000 and 50,000,000 yuan, scaled so the year's
        turnover (with the ``fixed`` flagships) meets its target."""
        rng = self.rng
        raw = [
            min(max(rng.lognormvariate(math.log(600_000), 1.3) * YUAN, MIN_AMOUNT), MAX_AMOUNT)
            for _ in range(count)
        ]
        goal = yearly_target(year, self.per_year) - fixed
        for _ in range(8):
            free = [a for a in raw if MIN_AMOUNT < a < MAX_AMOUNT]
            pinned = sum(raw) - sum(free)
            if not free or goal <= pinned:
                break
            factor = (goal - pinned) / sum(free)
            if abs(factor - 1) < 1e-4:
                break
            raw = [
                min(max(a * factor, MIN_AMOUNT), MAX_AMOUNT) if MIN_AMOUNT < a < MAX_AMOUNT else a
                for a in raw
            ]
        return [_round_amount(a) for a in raw]

    def _title(self, domain: str, contract_type: str) -> str:
        subject = self.rng.choice(SUBJECTS[domain])
        return subject + self.rng.choice(TYPE_SUFFIXES[contract_type])

    def _deal(self, year: int, amount: int) -> _Deal:
        rng = self.rng
        related = rng.random() < 0.05
        flow = _weighted(
            rng,
            {"absorb": 33, "local": 22, "export": 25}
            if related
            else {"absorb": 33, "output": 18, "local": 22, "export": 25, "outside": 2},
        )
        seller, buyer = self._parties(flow, related)
        contract_type = _weighted(rng, CONTRACT_TYPES)
        # Universities and institutes sell what they research; firms mostly buy for their trade.
        research = seller.kind != "enterprise"
        domain = seller.sector if research or rng.random() < 0.3 else buyer.sector
        registered = self._registration_day(year)
        return _Deal(
            seller=seller,
            buyer=buyer,
            contract_type=contract_type,
            domain=domain,
            title=self._title(domain, contract_type),
            amount=amount,
            related=related,
            brokers=self._pick_brokers(registered, seller.local or buyer.local),
            registered_on=registered,
            signed_on=registered - _days(rng.randint(0, 75)),
        )

    def _parties(self, flow: str, related: bool) -> tuple[DemoParty, DemoParty]:
        rng = self.rng
        local_firm = self.local_enterprises
        if flow == "absorb":
            seller = (
                self.outside_research.pick(rng)
                if not related and rng.random() < 0.4
                else self.outside_enterprises.pick(rng)
            )
            buyer = (
                self.local_research.pick(rng)
                if not related and rng.random() < 0.08
                else local_firm.pick(rng)
            )
        elif flow == "output":
            seller = self.local_research.pick(rng)
            buyer = self.local_others.pick(rng) if rng.random() < 0.15 else local_firm.pick(rng)
        elif flow == "local":
            seller = local_firm.pick(rng)
            buyer = (
                self.local_others.pick(rng)
                if not related and rng.random() < 0.15
                else local_firm.pick(rng, unlike=seller)
            )
        elif flow == "export":
            seller = (
                self.local_research.pick(rng)
                if not related and rng.random() < 0.35
                else local_firm.pick(rng)
            )
            buyer = (
                self.outside_research.pick(rng)
                if not related and rng.random() < 0.15
                else self.outside_enterprises.pick(rng)
            )
        else:  # between two outside parties, registered here through a local branch
            seller = self.outside_research.pick(rng)
            buyer = self.outside_enterprises.pick(rng)
        return seller, buyer

    def _pick_brokers(self, registered: date, local: bool) -> list[str]:
        rng = self.rng
        if rng.random() >= (0.35 if local else 0.15):
            return []
        active = [b for b in self.population.brokers if b.active_from <= registered]
        count = min(len(active), rng.choices((1, 2, 3), (75, 20, 5))[0])
        chosen: list[str] = []
        while len(chosen) < count:
            broker = rng.choices(active, weights=[b.weight for b in active])[0]
            if broker.broker_id not in chosen:
                chosen.append(broker.broker_id)
        return chosen

    def _number(self, deal: _Deal) -> None:
        local = deal.seller if deal.seller.local or not deal.buyer.local else deal.buyer
        station = station_for(local, self.rng)
        year = deal.registered_on.year
        key = (station.station_id, year)
        serial = self._registration_counters.get(key, 0) + 1
        self._registration_counters[key] = serial
        deal.station = station
        deal.registration_no = f"{year}{station.region_code}{serial:06d}"

    # -- one contract's life ---------------------------------------------------------------------

    def _contract(self, deal: _Deal) -> None:
        life = _ContractLife(self, deal)
        for pending in life.events():
            self._pending.append(pending)

    def invoice_no(self, day: date, issuer: DemoParty) -> str:
        """A 20-digit fully digital invoice number (全电发票), unique."""
        self._invoice_counter += self.rng.randint(1, 40)
        return f"{day.year % 100:02d}{issuer.region_code[:2]}2{self._invoice_counter:015d}"

    def bank(self, payer: DemoParty, day: date) -> tuple[str, str]:
        """A unique bank serial of a payment by ``payer``, and the bank's name."""
        self._serial_counter += self.rng.randint(1, 400)
        if payer.local:
            code, bank = self.rng.choice(LOCAL_BANKS)
        else:
            code, bank = self.rng.choice(OUTSIDE_BANKS)
            city = CITIES.get(payer.region_code[:4], "")
            bank = f"{bank}{city}分行" if city else bank
        return f"{code}{day:%Y%m%d}{self._serial_counter:010d}", bank


def _round_amount(fen: float) -> int:
    step = 1_000 * YUAN if fen >= 1_000_000 * YUAN else 100 * YUAN
    return max(round(fen / step) * step, MIN_AMOUNT)


def _split(rng: random.Random, total: int, parts: int) -> list[int]:
    """``total`` fen in ``parts`` installments of whole hundreds of yuan, the last taking the
    rest."""
    if parts == 1:
        return [total]
    shares = [rng.uniform(0.2, 0.6) for _ in range(parts)]
    scale = sum(shares)
    amounts = [int(total * s / scale) // _STEP * _STEP for s in shares[:-1]]
    return [*amounts, total - sum(amounts)]


class _ContractLife:
    """Registration, evidence and corrections of one contract, in the order recorded."""

    def __init__(self, history: HistoryGenerator, deal: _Deal) -> None:
        self.h = history
        self.rng = history.rng
        self.deal = deal
        self.group = history._next_group()
        self.events_: list[_Pending] = []
        self.no = deal.registration_no
        self._seq = 0

    def add(self, day: date, op: str, body: dict[str, Any]) -> date:
        """Queue a command recorded on ``day`` (never before the registration); its day."""
        day = max(day, self.deal.registered_on)
        body = {"registration_no": self.no, **body} if op != "register_contract" else body
        self._seq += 1  # also orders what is recorded on one day, the cancellation last
        self.events_.append(_Pending(day, self.group, self._seq, op, body))
        return day

    def late(self, day: date) -> date:
        """The day evidence of ``day`` is recorded: mostly at once, sometimes months later."""
        if self.rng.random() < 0.02:
            return _clamp(day + _days(self.rng.randint(60, 400)))
        return day

    def events(self) -> list[_Pending]:
        rng = self.rng
        deal = self.deal
        amendment = None
        if not deal.flagship and rng.random() < 0.05:
            kinds = ["increase", "decrease", "brokers", "title"]
            if deal.seller.kind == deal.buyer.kind == "enterprise" and not deal.related:
                kinds.append("related")
            amendment = rng.choice(kinds)
        registered_amount = deal.amount
        technology = self._technology_amount(deal.amount)
        registered_technology = technology
        if amendment == "decrease":
            registered_amount = _round_amount(deal.amount / rng.uniform(0.6, 0.9))
            registered_technology = min(
                registered_amount, technology + (registered_amount - deal.amount)
            )
        self.add(deal.registered_on, "register_contract", self._registration(
            registered_amount, registered_technology
        ))  # fmt: skip
        if amendment == "decrease":
            day = _clamp(deal.registered_on + _days(rng.randint(3, 40)))
            self.add(day, "amend_contract", {
                "contract_amount": format_fen(deal.amount),
                "technology_amount": format_fen(technology),
                "amended_on": day.isoformat(),
                "reason": "合同标的调整，金额核减",
            })  # fmt: skip

        self._installments(deal.amount, technology, amendment)
        if amendment in ("brokers", "title", "related"):
            self._amend(amendment)
        if not deal.flagship and rng.random() < 0.03:
            self._cancel()
        self.events_.sort()
        return self.events_

    def _technology_amount(self, amount: int) -> int:
        if self.rng.random() < 0.3:
            return amount
        low = 0.7 if self.deal.contract_type in ("development", "transfer", "licensing") else 0.5
        return int(amount * self.rng.uniform(low, 1.0)) // _STEP * _STEP

    def _registration(self, amount: int, technology: int) -> dict[str, Any]:
        deal = self.deal
        assert deal.station is not None
        body: dict[str, Any] = {
            "registration_no": self.no,
            "station_id": deal.station.station_id,
            "registered_on": deal.registered_on.isoformat(),
            "signed_on": deal.signed_on.isoformat(),
            "title": deal.title,
            "contract_type": deal.contract_type,
            "domain": deal.domain,
            "seller": deal.seller.body(),
            "buyer": deal.buyer.body(),
            "brokers": deal.brokers,
            "contract_amount": format_fen(amount),
            "technology_amount": format_fen(technology),
            "related_party": deal.related,
        }
        if deal.registered_on.year >= CERTIFICATES_FROM:
            body["certificate_no"] = f"{deal.station.station_id}-{self.no}"
        return body

    # -- evidence ----------------------------------------------------------------------------

    def _installments(self, amount: int, technology: int, amendment: str | None) -> None:
        """Invoices and transfer proofs of one to three installments; an amendment raising
        the amount adds an installment after it."""
        rng = self.rng
        deal = self.deal
        if deal.flagship == "absorption":
            first = int(amount * 0.6) // _STEP * _STEP
            amounts, gaps, mode, complete = (
                [first, amount - first],
                [(20, 60), (150, 300)],
                "",
                True,
            )
        elif deal.flagship == "output":
            amounts, gaps, mode, complete = [amount], [(30, 90)], "", True
        else:
            count = rng.choices((1, 2, 3), (45, 35, 20))[0]
            amounts = _split(rng, amount, count)
            gaps = [(7, 120)] + [(45, 330)] * (count - 1)
            mode = _weighted(rng, {"before": 70, "after": 15, "lump": 10, "none": 5})
            complete = rng.random() < 0.85
        paid = deal.signed_on
        first_paid: date | None = None
        for i, part in enumerate(amounts):
            low, high = gaps[i]
            paid += _days(rng.randint(low, high))
            unpaid = paid > TODAY or (i == len(amounts) - 1 and not complete)
            issued: date | None = None
            if mode == "after":
                issued = None if unpaid else paid + _days(rng.randint(10, 150))
            elif mode == "lump":
                if i == 0:
                    issued, part = max(deal.signed_on, paid - _days(rng.randint(0, 20))), amount
            elif mode != "none" and (not unpaid or rng.random() < 0.5):
                issued = max(deal.signed_on, paid - _days(rng.randint(0, 20)))
            if issued is not None and issued <= TODAY:
                self._invoice(issued, part)
            if not unpaid:
                self._proof(paid, amounts[i])
                first_paid = first_paid or paid
        if amendment == "increase" and first_paid is not None:
            self._increase(amount, technology, first_paid)

    def _increase(self, amount: int, technology: int, first_paid: date) -> None:
        """A supplementary agreement (补充协议) raises the amount; its money follows."""
        rng = self.rng
        # Money may be paid before the contract is registered (post-hoc registration); the
        # change is registered no earlier than the contract (the registry refuses it otherwise).
        day = max(first_paid + _days(rng.randint(10, 120)), self.deal.registered_on)
        if day > TODAY:
            return
        raised = _round_amount(amount * rng.uniform(1.1, 1.5))
        extra = raised - amount
        self.add(day, "amend_contract", {
            "contract_amount": format_fen(raised),
            "technology_amount": format_fen(technology + extra),
            "amended_on": day.isoformat(),
            "reason": "签订补充协议，增加合同内容",
        })  # fmt: skip
        issued = day + _days(rng.randint(0, 10))
        paid = issued + _days(rng.randint(10, 120))
        if issued <= TODAY:
            self._invoice(issued, extra)
        if paid <= TODAY:
            self._proof(paid, extra)

    def _invoice(self, issued: date, amount: int) -> None:
        """An invoice; a few are voided (红冲) and most of those issued again."""
        rng = self.rng
        deal = self.deal
        recorded = self.add(self.late(issued), "record_invoice", self._invoice_body(issued, amount))
        if deal.flagship or rng.random() >= 0.03:
            return
        voided = issued + _days(rng.randint(1, 40))
        if voided > TODAY:
            return
        invoice_no = self.events_[-1].body["invoice_no"]
        recorded = self.add(max(voided, recorded), "void_invoice", {
            "invoice_no": invoice_no,
            "voided_on": voided.isoformat(),
            "reason": rng.choice(VOID_REASONS),
        })  # fmt: skip
        again = _clamp(voided + _days(rng.randint(0, 5)))
        if rng.random() < 0.8:
            self.add(max(again, recorded), "record_invoice", self._invoice_body(again, amount))

    def _invoice_body(self, issued: date, amount: int) -> dict[str, Any]:
        return {
            "invoice_no": self.h.invoice_no(issued, self.deal.seller),
            "issued_on": issued.isoformat(),
            "amount": format_fen(amount),
            "issuer_credit_code": self.deal.seller.credit_code,
            "recipient_credit_code": self.deal.buyer.credit_code,
        }

    def _proof(self, paid: date, amount: int) -> None:
        """A bank transfer proof; a few are withdrawn: a mistyped serial is recorded again,
        a payment the bank returned is made again later."""
        rng = self.rng
        recorded = self.add(
            paid if self.deal.flagship else self.late(paid),
            "record_transfer_proof",
            self._proof_body(paid, amount),
        )
        if self.deal.flagship or rng.random() >= 0.02:
            return
        withdrawn = paid + _days(rng.randint(1, 30))
        if withdrawn > TODAY:
            return
        typo = rng.random() < 0.6
        recorded = self.add(max(withdrawn, recorded), "withdraw_transfer_proof", {
            "serial_no": self.events_[-1].body["serial_no"],
            "withdrawn_on": withdrawn.isoformat(),
            "reason": "回单流水号录入错误" if typo else "付款被银行退回",
        })  # fmt: skip
        again = paid if typo else withdrawn + _days(rng.randint(5, 40))
        if again <= TODAY:
            self.add(max(again, recorded), "record_transfer_proof", self._proof_body(again, amount))

    def _proof_body(self, paid: date, amount: int) -> dict[str, Any]:
        serial, bank = self.h.bank(self.deal.buyer, paid)
        return {
            "serial_no": serial,
            "paid_on": paid.isoformat(),
            "amount": format_fen(amount),
            "payer_credit_code": self.deal.buyer.credit_code,
            "payee_credit_code": self.deal.seller.credit_code,
            "bank": bank,
        }

    # -- corrections ---------------------------------------------------------------------------

    def _amend(self, kind: str) -> None:
        rng = self.rng
        deal = self.deal
        day = _clamp(deal.registered_on + _days(rng.randint(10, 300)))
        change: dict[str, Any]
        if kind == "brokers":
            active = [
                b.broker_id
                for b in self.h.population.brokers
                if b.active_from <= day and b.broker_id not in deal.brokers
            ]
            if not active:
                return
            brokers = list(deal.brokers)
            if brokers and rng.random() < 0.5:
                brokers[rng.randrange(len(brokers))] = rng.choice(active)
            else:
                brokers.append(rng.choice(active))
            change = {"brokers": brokers, "reason": "补充登记技术经纪人"}
        elif kind == "related":
            change = {"related_party": True, "reason": "经核查，双方为关联企业"}
        else:
            title = self.h._title(deal.domain, deal.contract_type)
            if title == deal.title:
                return
            change = {"title": title, "reason": "合同名称更正"}
        reason = change.pop("reason")
        self.add(day, "amend_contract", {**change, "amended_on": day.isoformat(), "reason": reason})

    def _cancel(self) -> None:
        """注销登记: what was recorded after the cancellation never happened."""
        rng = self.rng
        day = self.deal.registered_on + _days(rng.randint(20, 540))
        if day > TODAY:
            return
        self.events_ = [e for e in sorted(self.events_) if e.day <= day]
        self.add(day, "cancel_contract", {
            "cancelled_on": day.isoformat(),
            "reason": rng.choice(CANCEL_REASONS),
        })  # fmt: skip


# -- the public functions ----------------------------------------------------------------------


def generate_history(
    years: Iterable[int] = DEFAULT_YEARS,
    per_year: int = DEFAULT_PER_YEAR,
    seed: int = DEFAULT_SEED,
) -> Iterator[dict[str, Any]]:
    """The demo history as batch commands in log order; the same arguments, the same history."""
    yield from HistoryGenerator(list(years), per_year, seed).commands()


@dataclass
class HistorySummary:
    """What a history holds: commands by op, and per registration year the contracts and their
    turnover (final amounts of contracts not cancelled, fen)."""

    commands: int = 0
    ops: dict[str, int] = field(default_factory=dict)
    contracts: dict[int, int] = field(default_factory=dict)
    turnover: dict[int, int] = field(default_factory=dict)
    brokers_filed: dict[int, int] = field(default_factory=dict)


def summarise(commands: Iterable[dict[str, Any]]) -> HistorySummary:
    """Count a history's commands and total its yearly turnover."""
    summary = HistorySummary()
    contracts: dict[str, list[Any]] = {}  # registration no → [year, amount fen, cancelled]
    for command in commands:
        op, body = command["op"], command["body"]
        summary.commands += 1
        summary.ops[op] = summary.ops.get(op, 0) + 1
        if op == "register_contract":
            year = int(body["registered_on"][:4])
            contracts[body["registration_no"]] = [year, parse_yuan(body["contract_amount"]), False]
        elif op == "amend_contract" and "contract_amount" in body:
            contracts[body["registration_no"]][1] = parse_yuan(body["contract_amount"])
        elif op == "cancel_contract":
            contracts[body["registration_no"]][2] = True
        elif op == "file_broker":
            year = int(body["filed_on"][:4])
            summary.brokers_filed[year] = summary.brokers_filed.get(year, 0) + 1
    for year, amount, cancelled in contracts.values():
        summary.contracts[year] = summary.contracts.get(year, 0) + 1
        if not cancelled:
            summary.turnover[year] = summary.turnover.get(year, 0) + amount
    return summary


def write_history(
    path: Path,
    years: Iterable[int] = DEFAULT_YEARS,
    per_year: int = DEFAULT_PER_YEAR,
    seed: int = DEFAULT_SEED,
    on_command: Callable[[dict[str, Any]], None] | None = None,
) -> HistorySummary:
    """Write the history to ``path`` as JSON lines; what it holds."""
    commands = list(generate_history(years, per_year, seed))
    with path.open("wb") as out:
        for command in commands:
            out.write(orjson.dumps(command) + b"\n")
            if on_command is not None:
                on_command(command)
    return summarise(commands)
