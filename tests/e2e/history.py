"""A small history for the end-to-end test, and its entitlements worked out by hand.

Every figure below is arithmetic on shared/domain.md § Money rules with the policy in force
(schemas/policy/pingdingshan-2020.toml): local = region code starting 4104; turnover years
2020–2025; a contract counts for Y when registered in Y−1 or Y and of type development,
transfer or licensing; E(d) = min(P(d), I, contract amount); evidenced(Y) = E(31 Dec Y) −
E(31 Dec Y−1); absorption and output 10 % capped at 500,000.00, broker 1 % capped at
200,000.00, each broker named on a contract taking an equal share; gross rounded half up to the
fen. Nothing here calls the policy engine: that is what the test checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.support.parties import credit_code

YEARS_IN_FORCE = range(2020, 2026)
STATION_ID = "S0001"  # the stack's demo station, "station-demo" in local-tokens.txt

_ROUTES = {
    "register_contract": "/v1/contracts",
    "record_invoice": "/v1/contracts/{registration_no}/invoices",
    "record_transfer_proof": "/v1/contracts/{registration_no}/transfer-proofs",
    "cancel_contract": "/v1/contracts/{registration_no}/cancellation",
    "file_broker": "/v1/brokers",
    "record_provincial_funding": "/v1/provincial-funding",
}


@dataclass(frozen=True)
class Post:
    """One command of the history: who sends it, the operation, its path parameters and body."""

    who: str  # "bureau", or "station" (station-demo of station S0001)
    op: str
    body: dict[str, Any]
    params: dict[str, str] = field(default_factory=dict)

    def request(self) -> tuple[str, dict[str, Any]]:
        """The route and JSON body to POST."""
        return _ROUTES[self.op].format(**self.params), self.body

    def batch_command(self) -> dict[str, Any]:
        return {"op": self.op, "body": {**self.params, **self.body}}


@dataclass(frozen=True)
class Batch:
    """Several commands stored atomically through ``POST /v1/batch``."""

    who: str
    posts: tuple[Post, ...]

    def request(self) -> tuple[str, dict[str, Any]]:
        return "/v1/batch", {"commands": [p.batch_command() for p in self.posts]}


def _party(first17: str, name: str, kind: str, region_code: str) -> dict[str, str]:
    return {
        "credit_code": credit_code(first17),
        "name": name,
        "kind": kind,
        "region_code": region_code,
    }


# -- parties -----------------------------------------------------------------------------------
# Local (region 4104xx): enterprises E1–E8, a university U, a research institute R and a new
# R&D institution N. Outside the city: an enterprise X1 (Beijing), a university X2 (Shanghai),
# a research institute X3 (Wuhan).
E1 = _party("91410402MAE2E0001", "平顶山鹰城重工有限公司", "enterprise", "410402")
E2 = _party("91410403MAE2E0002", "平顶山卫东新材料有限公司", "enterprise", "410403")
E3 = _party("91410404MAE2E0003", "平顶山石龙电气有限公司", "enterprise", "410404")
E4 = _party("91410411MAE2E0004", "平顶山湛河环保科技有限公司", "enterprise", "410411")
E5 = _party("91410421MAE2E0005", "宝丰县精密铸造有限公司", "enterprise", "410421")
E6 = _party("91410422MAE2E0006", "叶县盐化工有限公司", "enterprise", "410422")
E7 = _party("91410423MAE2E0007", "鲁山县食品机械有限公司", "enterprise", "410423")
E8 = _party("91410425MAE2E0008", "郏县光伏组件有限公司", "enterprise", "410425")
U = _party("12410402MBE2E0009", "平顶山工学院(测试)", "university", "410402")
R = _party("12410481MBE2E0010", "舞钢市特钢研究所", "research_institute", "410481")
N = _party("52410482MJE2E0011", "汝州市新型研发中心", "new_rd_institution", "410482")
X1 = _party("91110108MAE2E0012", "北京智联装备科技有限公司", "enterprise", "110108")
X2 = _party("12310104MBE2E0013", "上海测试理工大学", "university", "310104")
X3 = _party("12420102MBE2E0014", "武汉测试材料研究院", "research_institute", "420102")

B1, B2 = "E2E-B1", "E2E-B2"


@dataclass(frozen=True)
class Deal:
    """A contract and the commands that build its history."""

    registration_no: str
    registered_on: str
    signed_on: str
    contract_type: str
    seller: dict[str, str]
    buyer: dict[str, str]
    amount: str
    brokers: tuple[str, ...] = ()
    related_party: bool = False
    station_id: str = "PDS-KJJ"  # a station of the demo tokens (the bureau registers for it)
    who: str = "bureau"

    def register(self) -> Post:
        return Post(
            self.who,
            "register_contract",
            {
                "registration_no": self.registration_no,
                "station_id": self.station_id,
                "registered_on": self.registered_on,
                "signed_on": self.signed_on,
                "title": f"端到端测试合同 {self.registration_no}",
                "contract_type": self.contract_type,
                "domain": "advanced manufacturing",
                "seller": self.seller,
                "buyer": self.buyer,
                "brokers": list(self.brokers),
                "contract_amount": self.amount,
                "technology_amount": self.amount,
                "related_party": self.related_party,
            },
        )

    def _on(self, op: str, body: dict[str, Any]) -> Post:
        return Post(self.who, op, body, {"registration_no": self.registration_no})

    def invoice(self, invoice_no: str, issued_on: str, amount: str) -> Post:
        return self._on(
            "record_invoice",
            {
                "invoice_no": invoice_no,
                "issued_on": issued_on,
                "amount": amount,
                "issuer_credit_code": self.seller["credit_code"],
                "recipient_credit_code": self.buyer["credit_code"],
            },
        )

    def payment(self, serial_no: str, paid_on: str, amount: str) -> Post:
        return self._on(
            "record_transfer_proof",
            {
                "serial_no": serial_no,
                "paid_on": paid_on,
                "amount": amount,
                "payer_credit_code": self.buyer["credit_code"],
                "payee_credit_code": self.seller["credit_code"],
                "bank": "中国银行平顶山分行",
            },
        )

    def cancel(self, cancelled_on: str) -> Post:
        return self._on("cancel_contract", {"cancelled_on": cancelled_on, "reason": "合同解除"})


# -- contracts ---------------------------------------------------------------------------------

# Cap: E1 (local enterprise) buys from outside the city twice in 2023 — absorption.
C01 = Deal("E2E-C01", "2023-02-10", "2023-02-01", "development", X1, E1, "3000000.00")
C02 = Deal("E2E-C02", "2023-05-20", "2023-05-10", "transfer", X2, E1, "2500000.00")
# Related parties: E2 buys from X1, declared related (关联企业) — absorption excluded.
C03 = Deal(
    "E2E-C03", "2023-04-01", "2023-03-20", "development", X1, E2, "800000.00", related_party=True
)
# Late invoice: E3 pays X3 in Sept 2023; the invoice, issued Jan 2024, is posted last.
C04 = Deal("E2E-C04", "2023-06-01", "2023-05-25", "licensing", X3, E3, "1000000.00")
# Cancellation: R (local institute) sells to E4 (local) with broker B1; cancelled in 2024.
C05 = Deal("E2E-C05", "2024-03-01", "2024-02-20", "development", R, E4, "400000.00", (B1,))
# Broker split: E5 buys from X2 through B1 (filed 2022) and B2 (filed only on 2025-02-10).
C06 = Deal("E2E-C06", "2024-02-15", "2024-02-01", "development", X2, E5, "1234567.89", (B1, B2))
# Provincial funding: U (local university) sells to E6 (local); U was funded for 2022.
C07 = Deal("E2E-C07", "2022-04-01", "2022-03-20", "development", U, E6, "900000.00")
# Payment across a year end: R sells to E7 (local), paid Dec 2024 and Jan 2025; broker B2.
C08 = Deal("E2E-C08", "2024-10-08", "2024-10-01", "development", R, E7, "700000.00", (B2,))
# Cap is per year: E1 buys from X1 again in 2024, paid in full but only partly invoiced.
C09 = Deal("E2E-C09", "2024-01-15", "2024-01-05", "development", X1, E1, "1200000.00")
# Registered by the station itself: N (local new R&D institution) licenses to E8 (local).
C10 = Deal(
    "E2E-C10", "2025-03-03", "2025-02-25", "licensing", N, E8, "250000.05",
    station_id=STATION_ID, who="station",
)  # fmt: skip
# A type that does not count: E1 buys consulting from X1 in 2024.
C11 = Deal("E2E-C11", "2024-06-01", "2024-05-20", "consulting", X1, E1, "100000.00")
# Outside the window: registered 2022, paid only in 2024 (window for 2024 is 2023–2024).
C12 = Deal("E2E-C12", "2022-06-01", "2022-05-20", "development", X3, E3, "500000.00")

CONTRACTS = (C01, C02, C03, C04, C05, C06, C07, C08, C09, C10, C11, C12)
CANCELLED = C05.registration_no

HISTORY: tuple[Post | Batch, ...] = (
    Post("bureau", "file_broker", {
        "broker_id": B1, "name": "李经纪", "organisation_credit_code": E1["credit_code"],
        "filed_on": "2022-05-01",
    }),
    Post("bureau", "file_broker", {
        "broker_id": B2, "name": "王经纪", "organisation_credit_code": E5["credit_code"],
        "filed_on": "2025-02-10",
    }),
    Post("bureau", "record_provincial_funding", {
        "credit_code": U["credit_code"], "year": 2022, "programme": "河南省科技成果转化专项",
        "amount": "300000.00",
    }),
    C01.register(),
    C01.invoice("E2E-INV-01", "2023-03-01", "3000000.00"),
    C01.payment("E2E-BANK-01", "2023-03-15", "3000000.00"),
    C02.register(),
    C02.invoice("E2E-INV-02", "2023-06-01", "2500000.00"),
    C02.payment("E2E-BANK-02", "2023-06-10", "2500000.00"),
    C03.register(),
    C03.invoice("E2E-INV-03", "2023-04-10", "800000.00"),
    C03.payment("E2E-BANK-03", "2023-04-20", "800000.00"),
    C04.register(),
    C04.payment("E2E-BANK-04", "2023-09-15", "1000000.00"),
    C05.register(),
    C05.invoice("E2E-INV-05", "2024-04-01", "400000.00"),
    C05.payment("E2E-BANK-05", "2024-04-10", "400000.00"),
    C06.register(),
    C06.invoice("E2E-INV-06", "2024-03-01", "1234567.89"),
    C06.payment("E2E-BANK-06", "2024-03-20", "1234567.89"),
    C07.register(),
    C07.invoice("E2E-INV-07", "2022-05-01", "900000.00"),
    C07.payment("E2E-BANK-07A", "2022-06-01", "500000.00"),
    C07.payment("E2E-BANK-07B", "2023-03-01", "400000.00"),
    C08.register(),
    C08.invoice("E2E-INV-08", "2024-12-15", "700000.00"),
    C08.payment("E2E-BANK-08A", "2024-12-20", "300000.00"),
    C08.payment("E2E-BANK-08B", "2025-01-10", "400000.00"),
    Batch("bureau", (
        C09.register(),
        C09.invoice("E2E-INV-09", "2024-02-01", "1000000.00"),
        C09.payment("E2E-BANK-09", "2024-02-15", "1200000.00"),
        C11.register(),
        C11.invoice("E2E-INV-11", "2024-06-10", "100000.00"),
        C11.payment("E2E-BANK-11", "2024-06-20", "100000.00"),
    )),
    C10.register(),
    C10.invoice("E2E-INV-10", "2025-03-10", "250000.05"),
    C10.payment("E2E-BANK-10", "2025-03-20", "250000.05"),
    C12.register(),
    C12.invoice("E2E-INV-12", "2022-07-01", "500000.00"),
    C12.payment("E2E-BANK-12", "2024-02-01", "500000.00"),
    C05.cancel("2024-11-30"),
)  # fmt: skip

# Posted after everything above has been applied by subsidy.
LATE_INVOICE = C04.invoice("E2E-INV-04", "2024-01-20", "1000000.00")


# -- the entitlements, by hand -----------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """One non-zero entitlement: yuan strings, and the contracts that fed it (evidenced)."""

    turnover: str
    gross: str
    entitlement: str
    contracts: dict[str, str]
    capped: bool = False


def _code(p: dict[str, str]) -> str:
    return p["credit_code"]


# (year, category, beneficiary) → expected; every non-zero entitlement of every year in force.
EXPECTED: dict[tuple[int, str, str], Expected] = {
    # 2020, 2021: no contract evidences money.
    # 2022: only C07 evidences money (E(2022) = min(P 500,000, I 900,000, C 900,000) = 500,000),
    # and U's output is excluded for provincial funding in 2022; E6 is a local buyer from a local
    # seller (no absorption). C12's invoice (2022) is not yet paid: E(2022) = min(0, …) = 0.
    # So 2022 has no non-zero entitlement.
    #
    # 2023 absorption E1: C01 3,000,000.00 + C02 2,500,000.00 = 5,500,000.00;
    # ×10 % = 550,000.00 > cap 500,000.00 → 500,000.00 (capped).
    (2023, "absorption", _code(E1)): Expected(
        "5500000.00",
        "550000.00",
        "500000.00",
        {C01.registration_no: "3000000.00", C02.registration_no: "2500000.00"},
        capped=True,
    ),
    # 2023 absorption E3: C04 paid 1,000,000.00 on 2023-09-15; the invoice issued 2024-01-20 is
    # known, so E(31 Dec 2023) = min(1,000,000, 1,000,000, 1,000,000) = 1,000,000.00, all of it
    # attributed to 2023 (E(2022) = 0); ×10 % = 100,000.00. In 2024: 1,000,000 − 1,000,000 = 0.
    (2023, "absorption", _code(E3)): Expected(
        "1000000.00", "100000.00", "100000.00", {C04.registration_no: "1000000.00"}
    ),
    # 2023 output U: C07 E(2023) − E(2022) = min(900,000, 900,000, 900,000) − 500,000 =
    # 400,000.00; registered 2022, in the window for 2023; no funding recorded for 2023;
    # ×10 % = 40,000.00.
    (2023, "output", _code(U)): Expected(
        "400000.00", "40000.00", "40000.00", {C07.registration_no: "400000.00"}
    ),
    # 2024 absorption E1: C09 E = min(P 1,200,000, I 1,000,000, C 1,200,000) = 1,000,000.00;
    # ×10 % = 100,000.00 (the cap is per year: 2023's does not carry). C11 is consulting.
    (2024, "absorption", _code(E1)): Expected(
        "1000000.00", "100000.00", "100000.00", {C09.registration_no: "1000000.00"}
    ),
    # 2024 absorption E5: C06 1,234,567.89 × 10 % = 123,456.789 → 123,456.79 (half up).
    (2024, "absorption", _code(E5)): Expected(
        "1234567.89", "123456.79", "123456.79", {C06.registration_no: "1234567.89"}
    ),
    # 2024 output R: C08 E(31 Dec 2024) = min(P 300,000, I 700,000, C 700,000) = 300,000.00;
    # ×10 % = 30,000.00. C05 (400,000.00) is cancelled and counts for nothing.
    (2024, "output", _code(R)): Expected(
        "300000.00", "30000.00", "30000.00", {C08.registration_no: "300000.00"}
    ),
    # 2024 broker B1: C06 1,234,567.89 / 2 brokers = 617,283.945 (shown 617,283.95); B2's half
    # is forfeited, not given to B1; 617,283.945 × 1 % = 6,172.83945 → 6,172.84. C05 cancelled.
    (2024, "broker", B1): Expected(
        "617283.95", "6172.84", "6172.84", {C06.registration_no: "617283.95"}
    ),
    # 2025 output R: C08 E(2025) − E(2024) = 700,000 − 300,000 = 400,000.00 (registered 2024,
    # in the window for 2025); ×10 % = 40,000.00.
    (2025, "output", _code(R)): Expected(
        "400000.00", "40000.00", "40000.00", {C08.registration_no: "400000.00"}
    ),
    # 2025 broker B2: filed 2025-02-10 ≤ 31 Dec 2025, sole broker of C08: 400,000.00 × 1 % =
    # 4,000.00.
    (2025, "broker", B2): Expected(
        "400000.00", "4000.00", "4000.00", {C08.registration_no: "400000.00"}
    ),
    # 2025 output N: C10 250,000.05 × 10 % = 25,000.005 → 25,000.01 (half up).
    (2025, "output", _code(N)): Expected(
        "250000.05", "25000.01", "25000.01", {C10.registration_no: "250000.05"}
    ),
}

# (year, category, beneficiary) → (registration no, reason) pairs its explanation must list.
EXCLUDED: dict[tuple[int, str, str], set[tuple[str, str]]] = {
    # C03: 800,000.00 evidenced in 2023, but E2 and X1 are related: 0.00.
    (2023, "absorption", _code(E2)): {(C03.registration_no, "related_party")},
    # C07: 500,000.00 evidenced in 2022, but U received provincial funding for 2022: 0.00.
    (2022, "output", _code(U)): {(C07.registration_no, "provincial_funding")},
    # C05 cancelled: gone from every category it would have fed.
    (2024, "output", _code(R)): {(C05.registration_no, "cancelled")},
    (2024, "absorption", _code(E4)): {(C05.registration_no, "cancelled")},
    (2024, "broker", B1): {(C05.registration_no, "cancelled")},
    # B2 was filed on 2025-02-10, after 31 Dec 2024: its shares of C06 and C08 are forfeited.
    (2024, "broker", B2): {
        (C06.registration_no, "broker_not_filed"),
        (C08.registration_no, "broker_not_filed"),
    },
    # C11 is consulting; C12 was registered in 2022, outside the window for 2024.
    (2024, "absorption", _code(E1)): {(C11.registration_no, "contract_type")},
    (2024, "absorption", _code(E3)): {(C12.registration_no, "outside_window")},
}

# Before the late invoice arrives, C04 has I = 0, so E = 0 and E3 has nothing for 2023.
ABSENT_BEFORE_LATE_INVOICE = (2023, "absorption", _code(E3))
