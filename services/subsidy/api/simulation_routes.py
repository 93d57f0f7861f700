"""The policy simulation route: the bureau and finance try a draft policy on the real history."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from services.common.tokens import Principal
from services.common.web.auth import require_roles
from services.common.web.openapi import refusals
from services.subsidy.api import simulation_models as m
from services.subsidy.simulations import Simulations

router = APIRouter(prefix="/v1")

Planner = Annotated[Principal, Depends(require_roles("finance", "bureau"))]


def simulations(request: Request) -> Simulations:
    app: Simulations = request.app.state.simulations
    return app


@router.post("/simulations", response_model=m.SimulationPublic, responses=refusals(403))
def simulate(request: Request, who: Planner, body: m.SimulationCreate) -> dict[str, Any]:
    """Recompute a turnover year under a draft policy (政策模拟) from the history at the applied
    position, beside the version in force; nothing is stored and the policy in force is
    unchanged. A draft that breaks a rule is a 422 naming the setting (policy.<setting>)."""
    return simulations(request).simulate(body.year, body.policy)
