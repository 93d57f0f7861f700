"""Who takes part in the demo history: parties, brokers and registration stations.

Credit codes follow GB 32100-2015 (registration authority, organisation type, the registering
authority's GB/T 2260 region, a GB 11714 organisation code with its own check character, and
the check character); names are Chinese and fictional except the public universities and
institutes a reader of the plan expects to see.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from services.common.codes import CREDIT_CODE_CHARSET, credit_code_check_character

CITY_PREFIX = "4104"
TODAY = date(2026, 11, 27)  # no date in the demo lies after this day

# 平顶山市's districts, counties and county-level cities: region code → (name prefix, weight).
LOCAL_REGIONS: dict[str, tuple[str, int]] = {
    "410402": ("平顶山", 20),  # 新华区
    "410403": ("平顶山", 15),  # 卫东区
    "410404": ("平顶山市石龙区", 5),
    "410411": ("平顶山", 18),  # 湛河区, with the high-tech zone
    "410421": ("宝丰县", 8),
    "410422": ("叶县", 8),
    "410423": ("鲁山县", 5),
    "410425": ("郏县", 6),
    "410481": ("舞钢市", 8),
    "410482": ("汝州市", 7),
}

# Elsewhere: region code → (city, weight). Zhengzhou, Luoyang and Xuchang are in Henan but
# not local.
OUTSIDE_REGIONS: dict[str, tuple[str, int]] = {
    "110108": ("北京", 14),
    "110105": ("北京", 4),
    "310115": ("上海", 10),
    "310104": ("上海", 3),
    "440305": ("深圳", 10),
    "410105": ("郑州", 16),
    "410102": ("郑州", 4),
    "410305": ("洛阳", 6),
    "411002": ("许昌", 3),
    "330106": ("杭州", 6),
    "320505": ("苏州", 5),
    "420111": ("武汉", 5),
    "610113": ("西安", 4),
    "120116": ("天津", 3),
    "340104": ("合肥", 4),
    "430104": ("长沙", 3),
}

# Technology domains (技术领域) → (industry words for company names, share of enterprises).
SECTORS: dict[str, tuple[tuple[str, ...], int]] = {
    "新材料及其应用": (("新材料", "尼龙科技", "碳素", "硅材料", "特钢", "盐化工", "化工"), 26),
    "先进制造": (("机械", "电气", "智能装备", "矿山机械", "液压", "重工"), 24),
    "环境保护与资源综合利用": (("环保科技", "节能技术", "资源综合利用", "煤业"), 12),
    "新能源与高效节能": (("新能源", "光伏科技", "储能科技", "能源科技"), 10),
    "电子信息": (("信息技术", "软件", "电子科技", "数据科技"), 12),
    "生物、医药和医疗器械": (("生物科技", "制药", "医疗器械"), 6),
    "农业": (("农业科技", "食用菌", "生态农业", "牧业"), 7),
    "城市建设与社会发展": (("建设工程", "建筑科技", "规划设计"), 3),
}

# What a county is known for shifts its firms toward a sector (舞钢 steel, 叶县 salt…).
REGION_SECTOR: dict[str, str] = {
    "410481": "新材料及其应用",
    "410422": "新材料及其应用",
    "410404": "新材料及其应用",
    "410423": "农业",
    "410425": "农业",
    "410482": "先进制造",
}

LOCAL_ZIHAO = (
    "鹰城", "天安", "瑞平", "恒基", "华晟", "宏源", "金晶", "中鸿", "博翔", "鑫源", "豫能",
    "德润", "佳诚", "昊华", "盛世", "新源", "旭阳", "亿丰", "正弘", "鲁阳", "尧山", "汝瓷",
    "白龟湖", "湛河", "伏牛", "沙河", "昭平", "香山", "应国", "龙兴", "荣达", "鸿达", "泰隆",
    "安泰", "中平", "平安", "开元", "宝源", "润丰", "广信", "嘉禾", "福瑞", "天瑞", "汇丰",
    "长鹰", "神鹰", "宇通", "华鹰", "晟达", "隆鑫", "万和", "金鼎", "锦程", "恒通", "兴华",
    "东升", "聚德", "天宏", "卓越", "瑞祥",
)  # fmt: skip
OUTSIDE_ZIHAO = (
    "中科", "华创", "博达", "新锐", "智联", "清研", "启明", "海纳", "睿思", "融创", "精工",
    "远景", "天成", "华研", "普惠", "北辰", "东华", "星河", "云帆", "中研", "和光", "凯越",
    "同方", "恒瑞", "科达", "汇智", "卓远", "泰和", "新华", "宏图", "鼎新", "金桥", "蓝海",
    "华宇", "诚泰", "正泰", "德创", "思源", "明德", "嘉瑞",
)  # fmt: skip
SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董程曹袁邓许傅沈曾彭吕苏卢蒋"
    "蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙"
)
GIVEN = (
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛",
    "明", "超", "霞", "平", "刚", "建华", "志强", "晓东", "海燕", "红梅", "国庆", "文博",
    "子涵", "浩然", "雨萱", "振华", "建国", "丽娟", "春燕", "永强", "晓梅", "俊杰", "佳琪",
    "鹏飞", "新民", "卫东", "秀兰", "玉兰", "宏伟", "志刚", "海涛", "丹", "博", "鑫", "颖",
)  # fmt: skip

# (name, party region, credit-code region, credit-code type, sector)
_LOCAL_UNIVERSITIES = (
    ("平顶山学院", "410411", "410000", "12", "新材料及其应用"),
    ("河南城建学院", "410402", "410000", "12", "城市建设与社会发展"),
    ("平顶山工业职业技术学院", "410403", "410000", "12", "先进制造"),
    ("河南质量工程职业学院", "410411", "410000", "12", "先进制造"),
    ("平顶山职业技术学院", "410402", "410400", "12", "电子信息"),
    ("汝州职业技术学院", "410482", "410400", "12", "先进制造"),
)
_LOCAL_INSTITUTES = (
    ("中国平煤神马集团技术中心", "410402", "410400", "12", "新材料及其应用"),
    ("平顶山市农业科学院", "410402", "410400", "12", "农业"),
    ("平顶山市煤矿安全技术研究所", "410403", "410400", "12", "环境保护与资源综合利用"),
    ("平顶山市林业科学研究所", "410403", "410400", "12", "农业"),
    ("舞钢市钢铁材料研究所", "410481", "410481", "12", "新材料及其应用"),
    ("汝州市汝瓷工艺研究所", "410482", "410482", "12", "新材料及其应用"),
    ("鲁山县食用菌研究所", "410423", "410423", "12", "农业"),
)
_LOCAL_NEW_RD = (
    ("平顶山尼龙新材料产业研究院", "410411", "410400", "12", "新材料及其应用"),
    ("河南省碳基新材料研究院", "410402", "410400", "52", "新材料及其应用"),
    ("平顶山市高端电气装备研究院", "410402", "410400", "52", "先进制造"),
    ("叶县盐化工新材料研究院", "410422", "410422", "12", "新材料及其应用"),
    ("舞钢宽厚板技术研究院", "410481", "410481", "91", "新材料及其应用"),
    ("宝丰县特种陶瓷研究院", "410421", "410421", "52", "新材料及其应用"),
    ("平顶山市硅基新材料研究院", "410404", "410400", "91", "新材料及其应用"),
    ("平顶山智慧矿山技术研究院", "410403", "410400", "91", "电子信息"),
)
_LOCAL_OTHERS = (
    ("平顶山市第一人民医院", "410402", "410400", "12", "生物、医药和医疗器械"),
    ("平顶山市疾病预防控制中心", "410402", "410400", "12", "生物、医药和医疗器械"),
    ("叶县人民医院", "410422", "410422", "12", "生物、医药和医疗器械"),
    ("平顶山市生态环境监测中心", "410411", "410400", "12", "环境保护与资源综合利用"),
    ("平顶山市城市建设投资服务中心", "410402", "410400", "12", "城市建设与社会发展"),
)
_OUTSIDE_UNIVERSITIES = (
    ("清华大学", "110108", "110000", "12", "先进制造"),
    ("北京理工大学", "110108", "110000", "12", "先进制造"),
    ("中国矿业大学（北京）", "110108", "110000", "12", "环境保护与资源综合利用"),
    ("北京科技大学", "110108", "110000", "12", "新材料及其应用"),
    ("郑州大学", "410105", "410000", "12", "新材料及其应用"),
    ("河南工业大学", "410105", "410000", "12", "农业"),
    ("河南理工大学", "410811", "410000", "12", "环境保护与资源综合利用"),
    ("河南科技大学", "410305", "410000", "12", "先进制造"),
    ("中国矿业大学", "320311", "320000", "12", "环境保护与资源综合利用"),
    ("上海交通大学", "310104", "310000", "12", "电子信息"),
    ("华东理工大学", "310104", "310000", "12", "新材料及其应用"),
    ("浙江大学", "330106", "330000", "12", "新能源与高效节能"),
    ("华中科技大学", "420111", "420000", "12", "先进制造"),
    ("武汉理工大学", "420111", "420000", "12", "新材料及其应用"),
    ("西安交通大学", "610103", "610000", "12", "新能源与高效节能"),
    ("天津大学", "120104", "120000", "12", "新材料及其应用"),
)
_OUTSIDE_INSTITUTES = (
    ("中国科学院过程工程研究所", "110108", "110000", "12", "新材料及其应用"),
    ("中国科学院化学研究所", "110108", "110000", "12", "新材料及其应用"),
    ("中国科学院山西煤炭化学研究所", "140105", "140000", "12", "环境保护与资源综合利用"),
    ("中国科学院上海有机化学研究所", "310104", "310000", "12", "新材料及其应用"),
    ("中国科学院宁波材料技术与工程研究所", "330211", "330200", "12", "新材料及其应用"),
    ("河南省科学院", "410105", "410000", "12", "电子信息"),
    ("河南省农业科学院", "410105", "410000", "12", "农业"),
)
_OUTSIDE_NEW_RD = (
    ("深圳清华大学研究院", "440305", "440300", "52", "电子信息"),
    ("中原关键金属研究院", "410105", "410100", "52", "新材料及其应用"),
)
# Organisations brokers work for (技术转移机构); they do not appear on contracts here.
_INTERMEDIARIES = (
    ("平顶山市技术转移中心", "410402", "410400", "12", "城市建设与社会发展"),
    ("平顶山市科技成果转化服务中心", "410402", "410400", "12", "城市建设与社会发展"),
    ("河南鹰城技术转移有限公司", "410411", "410411", "91", "城市建设与社会发展"),
    ("平顶山高新区科技创新服务中心", "410411", "410400", "12", "城市建设与社会发展"),
    ("汝州市科技创新服务中心", "410482", "410482", "12", "城市建设与社会发展"),
)


@dataclass(frozen=True)
class DemoParty:
    """A party as the registry records it, with what the generator needs to pick it."""

    credit_code: str
    name: str
    kind: str
    region_code: str
    sector: str
    weight: float = 1.0

    @property
    def local(self) -> bool:
        return self.region_code.startswith(CITY_PREFIX)

    def body(self) -> dict[str, str]:
        """The party as a contract body names it."""
        return {
            "credit_code": self.credit_code,
            "name": self.name,
            "kind": self.kind,
            "region_code": self.region_code,
        }


@dataclass(frozen=True)
class Station:
    """A registration station (技术合同登记机构); its region code prefixes registration numbers."""

    station_id: str
    region_code: str


@dataclass(frozen=True)
class BrokerProfile:
    """A technology broker: from when it works, and when (if ever) the bureau filed it."""

    broker_id: str
    name: str
    organisation_credit_code: str
    active_from: date
    filed_on: date | None
    weight: float


@dataclass(frozen=True)
class Population:
    local_universities: tuple[DemoParty, ...]
    local_institutes: tuple[DemoParty, ...]
    local_new_rd: tuple[DemoParty, ...]
    local_enterprises: tuple[DemoParty, ...]
    local_others: tuple[DemoParty, ...]
    outside_universities: tuple[DemoParty, ...]
    outside_institutes: tuple[DemoParty, ...]
    outside_enterprises: tuple[DemoParty, ...]
    intermediaries: tuple[DemoParty, ...]
    brokers: tuple[BrokerProfile, ...]

    @property
    def local_research(self) -> tuple[DemoParty, ...]:
        """Local sellers the output subsidy is for: universities, institutes, new R&D."""
        return self.local_universities + self.local_institutes + self.local_new_rd

    @property
    def outside_research(self) -> tuple[DemoParty, ...]:
        return self.outside_universities + self.outside_institutes

    @property
    def flagship_buyers(self) -> tuple[DemoParty, ...]:
        """The largest local enterprises: the buyers of the few very large contracts."""
        return self.local_enterprises[:6]


STATIONS = (
    Station("PDS-KJJ", "410400"),  # 市科技局技术合同登记处
    Station("PDS-GXQ", "410471"),  # 高新区
    Station("RZ-KJJ", "410482"),  # 汝州市
    Station("WG-KJJ", "410481"),  # 舞钢市
)


def station_for(party: DemoParty, rng: random.Random) -> Station:
    """The station a contract is registered at, by the local party's county."""
    if party.region_code == "410482":
        return STATIONS[2]
    if party.region_code == "410481":
        return STATIONS[3]
    if party.region_code == "410411" and rng.random() < 0.6:
        return STATIONS[1]
    return STATIONS[0] if rng.random() < 0.85 else STATIONS[1]


# -- codes -----------------------------------------------------------------------------------

_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_ORG_BODY = CREDIT_CODE_CHARSET  # letters GB 32100 forbids never appear in the body either


def organisation_code_check(body8: str) -> str:
    """GB 11714-1997 check character of an 8-character organisation code body."""
    total = sum(int(c, 36) * w for c, w in zip(body8, _ORG_WEIGHTS, strict=True))
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


class CodeMaker:
    """Mints distinct credit codes."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._used: set[str] = set()

    def make(self, type2: str, region: str) -> str:
        while True:
            if type2 == "91" and self._rng.random() < 0.7:  # codes issued since 2015: MA…
                body = "MA" + "".join(self._rng.choice(_ORG_BODY) for _ in range(6))
            else:
                body = "".join(self._rng.choice("0123456789") for _ in range(8))
            first17 = type2 + region + body + organisation_code_check(body)
            code = first17 + credit_code_check_character(first17)
            if code not in self._used:
                self._used.add(code)
                return code


# -- building the population -------------------------------------------------------------------


def _weighted(rng: random.Random, table: dict[str, tuple[str, int]]) -> str:
    keys = list(table)
    return rng.choices(keys, weights=[table[k][1] for k in keys])[0]


def _sector(rng: random.Random, region: str) -> str:
    if region in REGION_SECTOR and rng.random() < 0.5:
        return REGION_SECTOR[region]
    names = list(SECTORS)
    return rng.choices(names, weights=[SECTORS[s][1] for s in names])[0]


def _zipf(n: int, exponent: float) -> list[float]:
    """Weights of a few busy participants and many occasional ones, busiest first."""
    return [1.0 / (rank + 1) ** exponent for rank in range(n)]


def _fixed(
    codes: CodeMaker, kind: str, rows: Sequence[tuple[str, str, str, str, str]], weight: float = 1.0
) -> tuple[DemoParty, ...]:
    return tuple(
        DemoParty(codes.make(type2, code_region), name, kind, region, sector, weight)
        for name, region, code_region, type2, sector in rows
    )


def _enterprises(
    rng: random.Random,
    codes: CodeMaker,
    count: int,
    regions: dict[str, tuple[str, int]],
    zihao: Sequence[str],
    flagships: int,
) -> tuple[DemoParty, ...]:
    names: set[str] = set()
    firms: list[DemoParty] = []
    weights = _zipf(count, 0.8)
    while len(firms) < count:
        region = _weighted(rng, regions)
        prefix = regions[region][0]
        sector = _sector(rng, region)
        industry = rng.choice(SECTORS[sector][0])
        big = len(firms) < flagships
        if big:
            suffix = rng.choice(("集团有限公司", "股份有限公司"))
        else:
            suffix = rng.choices(("有限公司", "股份有限公司", "有限责任公司"), (85, 10, 5))[0]
        if not region.startswith(CITY_PREFIX) and prefix in ("郑州", "洛阳", "许昌"):
            prefix = rng.choice((prefix, "河南"))
        name = f"{prefix}{rng.choice(zihao)}{industry}{suffix}"
        if name in names:
            continue
        names.add(name)
        code_region = region if rng.random() < 0.8 else region[:4] + "00"
        weight = weights[len(firms)] * (4.0 if big else 1.0)
        firms.append(
            DemoParty(codes.make("91", code_region), name, "enterprise", region, sector, weight)
        )
    return tuple(firms)


def _person(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


def _day_in(rng: random.Random, year: int, first: int = 1, last: int = 365) -> date:
    day = date(year, 1, 1) + timedelta(days=rng.randint(first, last) - 1)
    return min(day, date(year, 12, 31))


def _brokers(
    rng: random.Random, count: int, years: Sequence[int], organisations: Sequence[DemoParty]
) -> tuple[BrokerProfile, ...]:
    """Most brokers are filed before they work (most in the first years, toward the plan's 100
    by 2022); some are filed only after contracts name them, and a few never."""
    shares = [0.42, 0.25, 0.13, 0.08, 0.07, 0.05][: len(years)]
    shares += [0.05] * (len(years) - len(shares))
    org_weights = [4.0 if o.kind in ("other", "enterprise") else 1.0 for o in organisations]
    weights = _zipf(count, 0.9)
    brokers = []
    for n in range(count):
        organisation = rng.choices(organisations, weights=org_weights)[0]
        filed: date | None
        if n == 0:  # the city's busiest broker, filed at the start
            first_filing = _day_in(rng, years[0], 5, 40)
            filed, active_from = first_filing, first_filing + timedelta(days=5)
        else:
            year = rng.choices(list(years), weights=shares)[0]
            fate = rng.random()
            if fate < 0.88:
                filed = _day_in(rng, year)
                active_from = filed + timedelta(days=rng.randint(0, 45))
            else:
                active_from = _day_in(rng, year)
                # filed late, across a year end, or never (also: not yet by today)
                filed = active_from + timedelta(days=rng.randint(200, 700)) if fate < 0.96 else None
            if filed is not None and filed > TODAY:
                filed = None
        brokers.append(
            BrokerProfile(
                broker_id=f"PDS-JJR-{n + 1:04d}",
                name=_person(rng),
                organisation_credit_code=organisation.credit_code,
                active_from=active_from,
                filed_on=filed,
                weight=weights[n] * (3.0 if n == 0 else 1.0),
            )
        )
    return tuple(brokers)


def build_population(rng: random.Random, years: Sequence[int], scale: float) -> Population:
    """Everyone in the demo; ``scale`` is the number of contracts a year over 400."""
    codes = CodeMaker(rng)
    intermediaries = _fixed(codes, "other", _INTERMEDIARIES)
    local_universities = _fixed(codes, "university", _LOCAL_UNIVERSITIES, 2.0)
    local_institutes = _fixed(codes, "research_institute", _LOCAL_INSTITUTES, 1.2)
    local_new_rd = _fixed(codes, "new_rd_institution", _LOCAL_NEW_RD, 1.0)
    local_enterprises = _enterprises(
        rng, codes, max(30, round(240 * scale)), LOCAL_REGIONS, LOCAL_ZIHAO, 6
    )
    local_others = _fixed(codes, "other", _LOCAL_OTHERS)
    outside_universities = _fixed(codes, "university", _OUTSIDE_UNIVERSITIES, 1.5)
    outside_institutes = _fixed(codes, "research_institute", _OUTSIDE_INSTITUTES, 1.5) + _fixed(
        codes, "new_rd_institution", _OUTSIDE_NEW_RD
    )
    outside_enterprises = _enterprises(
        rng, codes, max(25, round(150 * scale)), OUTSIDE_REGIONS, OUTSIDE_ZIHAO, 0
    )
    organisations = intermediaries + local_universities + local_institutes + local_new_rd
    return Population(
        local_universities=local_universities,
        local_institutes=local_institutes,
        local_new_rd=local_new_rd,
        local_enterprises=local_enterprises,
        local_others=local_others,
        outside_universities=outside_universities,
        outside_institutes=outside_institutes,
        outside_enterprises=outside_enterprises,
        intermediaries=intermediaries,
        brokers=_brokers(rng, max(12, round(170 * scale)), years, organisations),
    )
