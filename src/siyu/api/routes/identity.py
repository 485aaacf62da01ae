"""The identity graph as a whole: the workspace's identity rules, and full rebuilds checked
against the stored people."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from siyu.accounts.audit import record_audit
from siyu.api.deps import Admin, Analyst, ScopedSessionDep
from siyu.api.errors import COMMON_ERRORS
from siyu.identity.rules import IdentityRules
from siyu.identity.settings import has_own_rules, save_rules, workspace_rules
from siyu.profiles.rebuilds import RebuildRun, list_rebuilds, request_rebuild

router = APIRouter(prefix="/api/v1/identity", tags=["identity"], responses=COMMON_ERRORS)


class RebuildOut(BaseModel):
    id: str
    status: str
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    identifiers: int
    links: int
    people: int
    shared: int
    conflicts: int
    repaired: int
    duration_ms: int
    error: str | None

    @classmethod
    def of(cls, run: RebuildRun) -> RebuildOut:
        return cls(**run.__dict__)


@router.get("/rebuilds", response_model=list[RebuildOut])
def rebuilds(principal: Analyst, session: ScopedSessionDep) -> list[RebuildOut]:
    """Recent full rebuilds of this workspace's identity graph, newest first."""
    return [RebuildOut.of(r) for r in list_rebuilds(session)]


@router.post("/rebuilds", response_model=RebuildOut, status_code=202)
def start_rebuild(principal: Admin, session: ScopedSessionDep) -> RebuildOut:
    """Queue a full rebuild: every identifier and link re-solved at once; people that differ from
    the result are repaired (merged or split, audited as ``rebuild``). 409 while one is running."""
    run = request_rebuild(session, principal.actor_id)
    record_audit(session, principal, "identity.rebuild", target_type="identity_rebuild", target_id=run.id)
    return RebuildOut.of(run)


class KindRuleIO(BaseModel):
    kind: str
    merges: bool
    priority: int
    max_per_profile: int | None
    shared_limit: int | None


class RulesOut(BaseModel):
    rules: list[KindRuleIO]
    customised: bool


class RulesIn(BaseModel):
    rules: list[KindRuleIO]


class RulesSavedOut(RulesOut):
    rebuild: RebuildOut


def _rules_out(rules: IdentityRules, customised: bool) -> RulesOut:
    return RulesOut(
        rules=[KindRuleIO(kind=k, **v) for k, v in rules.to_dict().items()],
        customised=customised,
    )


@router.get("/rules", response_model=RulesOut)
def get_rules(principal: Analyst, session: ScopedSessionDep) -> RulesOut:
    """How identifiers of each kind link people: whether they merge, their priority (stronger links
    win conflicts), at most how many per person, and when a value counts as shared."""
    return _rules_out(workspace_rules(session), has_own_rules(session))


@router.put("/rules", response_model=RulesSavedOut)
def put_rules(body: RulesIn, principal: Admin, session: ScopedSessionDep) -> RulesSavedOut:
    """Change the rules (every kind, as ``GET`` shows them). New data follows them at once; a full
    rebuild is queued so that the people already stored follow them too."""
    rules = IdentityRules.from_dict({r.kind: r.model_dump(exclude={"kind"}) for r in body.rules})
    save_rules(session, rules, principal.actor_id)
    record_audit(session, principal, "identity.rules", target_type="identity_rules", details=rules.to_dict())
    run = request_rebuild(session, principal.actor_id, wait_for_busy=False)
    return RulesSavedOut(**_rules_out(rules, True).model_dump(), rebuild=RebuildOut.of(run))
