"""The safety limit on how much of the LogiKal tree one run may mark deleted.

A directory or project that vanishes takes its subtree with it (projects,
phases, elevations), so a source that answers wrongly for a moment — a
transient error we do not yet recognise, a half-empty listing — could mark
most of the warehouse deleted in one run. Every deletion is recoverable (the
rows stay, a later run revives them), but the ERP would see them vanish in
between. So a run that would mark more than a share of the live directories
or projects deleted (`logikal.deletion_limit` in policies.yaml) fails instead,
names what it would have marked, and marks nothing; a run with
`allow_mass_deletion: true` in its config accepts it. A project's sync holds
its phases and its elevations to the same limit, each counted against the
project's own live rows.
"""

from __future__ import annotations

from collections.abc import Sequence

from logikal_square_sync.logikal.engine.client.errors import LogikalError
from logikal_square_sync.policies import DeletionLimit, policies

_SAMPLE = 10


class MassDeletionError(LogikalError):
    """A run would mark more of the tree deleted than the deletion limit allows."""


def default_limit() -> DeletionLimit:
    return policies().logikal.deletion_limit


def check_deletion_limit(
    *,
    asset: str,
    noun: str,
    gone: Sequence[str],
    live_before: int,
    limit: DeletionLimit,
    allow_mass_deletion: bool,
    of: str | None = None,
    op: str | None = None,
    partition: str | None = None,
) -> None:
    """Raises `MassDeletionError` when marking `gone` deleted exceeds `limit` and it is not allowed.

    `asset` is the asset key (`logikal/projects`), `noun` what is counted
    (`projects`), `gone` a description of each row that would be marked. `of`
    names what the rows belong to when the limit is per parent (`LogiKal
    project 'Demo' (GUID)`), `op` the op whose config accepts it when it is not
    the asset's own (a multi-asset), `partition` the partition to materialize.
    """
    count = len(gone)
    if allow_mass_deletion or count <= limit.always_allowed or live_before <= 0:
        return
    share = count / live_before
    if share <= limit.max_share:
        return
    op = op or asset.replace("/", "__")
    sample = ", ".join(gone[:_SAMPLE]) + (f" and {count - _SAMPLE} more" if count > _SAMPLE else "")
    counted = f"live LogiKal {noun}" if of is None else f"{noun} of {of}"
    raise MassDeletionError(
        f"{asset} would mark {count} of {live_before} {counted} deleted ({share:.0%}), more than "
        f"the limit of {limit.max_share:.0%} (logikal.deletion_limit.max_share in policies.yaml), so it "
        f"marked nothing deleted. No longer at the source: {sample}. If they really are gone, materialize "
        f"{asset}{'' if partition is None else f' (partition {partition})'} once with the run config  "
        f"ops: {{{op}: {{config: {{allow_mass_deletion: true}}}}}}"
    )
