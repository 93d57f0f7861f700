"""``tcr registry import`` against a real registry process: a dry run lists every problem and
exits 1, a commit stores the file and says where."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openpyxl import load_workbook

from services.cli import main
from services.common.tokens import add_principal
from tests.support.registry_process import TCR, registry_process
from tests.support.workbooks import CONTRACT_HEADERS, INVOICE_HEADERS, contract_row, workbook
from tests.support.workbooks import invoice_row as invoice


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """A registry serving, the token of its station S1 and an auditor's."""
    tokens = tmp_path / "tokens.toml"
    station = add_principal(tokens, "station-s1", "station", "S1")
    auditor = add_principal(tokens, "auditor", "auditor")
    with registry_process(tmp_path, tokens) as url:
        yield url, station, auditor


def tcr(*argv: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TCR_")}
    if token:
        env["TCR_TOKEN"] = token
    return subprocess.run(
        [TCR, *argv], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_a_dry_run_lists_every_problem_and_a_commit_stores_the_file(
    registry: tuple[str, str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, token, auditor = registry
    bad = tmp_path / "登记.xlsx"
    bad.write_bytes(
        workbook(
            {
                "合同": (CONTRACT_HEADERS, [contract_row("R-1"), contract_row("R-1")]),
                "发票": (INVOICE_HEADERS, [invoice("R-1", "INV-1", "1200000.01")]),
            }
        )
    )
    marked = tmp_path / "marked.xlsx"

    checked = tcr(
        "registry", "import", str(bad), "--dry-run", "--registry", url,
        "--errors-xlsx", str(marked), token=token,
    )  # fmt: skip

    assert checked.returncode == 1, checked.stderr
    assert "checking 登记.xlsx" in checked.stderr  # the progress line
    assert "2 problems in 2 of 3 rows" in checked.stdout
    lines = checked.stdout.splitlines()
    assert any("合同" in x and " 3 " in x and "duplicate_in_file" in x for x in lines)
    assert any(
        "发票" in x and "金额（元）" in x and "evidence_over_contract_amount" in x for x in lines
    )
    assert load_workbook(marked)["合同"].cell(row=3, column=1).comment is not None
    assert httpx.get(f"{url}/v1/health").json()["head"] == 0

    good = tmp_path / "fixed.xlsx"
    good.write_bytes(workbook({"合同": (CONTRACT_HEADERS, [contract_row("R-1")])}))
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n", "utf-8")

    stored = tcr(
        "registry", "import", str(good), "--registry", url, "--token-file", str(token_file),
        "--backlog",
    )  # fmt: skip

    assert stored.returncode == 0, stored.stderr
    assert "stored fixed.xlsx: 1 rows as 1 events at log positions 1–1" in stored.stdout
    events = httpx.get(f"{url}/v1/events", headers={"Authorization": f"Bearer {auditor}"}).json()
    assert events["events"][0]["intake"] == "backlog"
    # The audit verifies the marked entries' hashes from the feed as served.
    as_auditor = {"Authorization": f"Bearer {auditor}"}
    httpx.post(f"{url}/v1/checkpoints", headers=as_auditor).raise_for_status()
    assert main(["audit", "verify", "--registry", url, f"--token={auditor}"]) == 0
    assert capsys.readouterr().out.startswith("verified: 1 entries to position 1")


def test_without_a_token_the_command_says_how_to_give_one(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("登记号\n", "utf-8")
    refused = tcr("registry", "import", str(path), "--registry", "http://127.0.0.1:9")
    assert refused.returncode != 0
    assert "TCR_TOKEN" in refused.stderr
