"""AWS Backup: the backup selection, plan update and recovery point APIs moto
lacks, and the rules around deleting plans.

moto 5.2.5 serves plans and vaults but not CreateBackupSelection and friends,
UpdateBackupPlan or ListRecoveryPointsByBackupVault (it answers them with
NotImplemented). It also keeps a deleted plan's name taken and its tags listed by
the Resource Groups Tagging API, and deletes a plan that still has selections,
which AWS refuses.
"""

from __future__ import annotations

import json
from typing import Any

from moto.backup import urls as backup_urls
from moto.backup.exceptions import (
    AlreadyExistsException,
    InvalidRequestException,
    ResourceNotFoundException,
)
from moto.backup.models import BackupBackend, Plan
from moto.backup.responses import BackupResponse
from moto.core.utils import unix_time
from moto.moto_api._internal import mock_random

from .patching import rule, wrap


def _selections(backend: Any) -> dict[str, dict[str, Any]]:
    """selection id -> {plan id, selection, creation date, request id}."""
    if not hasattr(backend, "_fintech_selections"):
        backend._fintech_selections = {}
    return backend._fintech_selections


def _live_plan(backend: Any, plan_id: str) -> Plan:
    plan = backend.plans.get(plan_id)
    if plan is None or plan.deletion_date is not None:
        raise ResourceNotFoundException(msg=f"Failed reading Backup plan {plan_id}")
    return plan


def _path_part(path: str, after: str) -> str:
    return path.split(after, 1)[1].split("/")[0]


@rule("backup", "missing-api")
def backup_selection_api() -> None:
    """Backup selections: Create (names unique per plan), Get, List, Delete;
    unknown plan or selection: ResourceNotFoundException."""

    def create_backup_selection(self: Any) -> str:
        backend = self.backup_backend
        plan_id = _path_part(self.path, "/backup/plans/")
        _live_plan(backend, plan_id)
        params = json.loads(self.body or "{}")
        selection = params.get("BackupSelection") or {}
        store = _selections(backend)
        name = selection.get("SelectionName")
        if any(s["plan"] == plan_id and s["selection"].get("SelectionName") == name for s in store.values()):
            raise AlreadyExistsException(msg=f"Backup selection {name} already exists")
        selection_id = str(mock_random.uuid4())
        created = unix_time()
        store[selection_id] = {
            "plan": plan_id,
            "selection": selection,
            "created": created,
            "request": params.get("CreatorRequestId"),
        }
        return json.dumps({"SelectionId": selection_id, "BackupPlanId": plan_id, "CreationDate": created})

    def _get(self: Any) -> tuple[str, str, dict[str, Any]]:
        plan_id = _path_part(self.path, "/backup/plans/")
        selection_id = _path_part(self.path, "/selections/")
        entry = _selections(self.backup_backend).get(selection_id)
        if entry is None or entry["plan"] != plan_id:
            raise ResourceNotFoundException(msg=f"Failed reading selection {selection_id}")
        return plan_id, selection_id, entry

    def get_backup_selection(self: Any) -> str:
        plan_id, selection_id, entry = _get(self)
        return json.dumps(
            {
                "BackupSelection": entry["selection"],
                "SelectionId": selection_id,
                "BackupPlanId": plan_id,
                "CreationDate": entry["created"],
                "CreatorRequestId": entry["request"],
            }
        )

    def list_backup_selections(self: Any) -> str:
        plan_id = _path_part(self.path, "/backup/plans/")
        _live_plan(self.backup_backend, plan_id)
        items = [
            {
                "SelectionId": sid,
                "SelectionName": e["selection"].get("SelectionName"),
                "BackupPlanId": plan_id,
                "CreationDate": e["created"],
                "IamRoleArn": e["selection"].get("IamRoleArn"),
            }
            for sid, e in _selections(self.backup_backend).items()
            if e["plan"] == plan_id
        ]
        return json.dumps({"BackupSelectionsList": items})

    def delete_backup_selection(self: Any) -> str:
        _, selection_id, _ = _get(self)
        del _selections(self.backup_backend)[selection_id]
        return "{}"

    for fn in (create_backup_selection, get_backup_selection, list_backup_selections, delete_backup_selection):
        setattr(BackupResponse, fn.__name__, fn)


@rule("backup", "missing-api")
def update_backup_plan_api() -> None:
    """UpdateBackupPlan replaces the plan document and returns a new VersionId."""

    def update_backup_plan(self: Any) -> str:
        plan_id = _path_part(self.path, "/backup/plans/")
        plan = _live_plan(self.backup_backend, plan_id)
        params = json.loads(self.body or "{}")
        document = params.get("BackupPlan") or {}
        # Plan() fills the rule defaults (schedule, windows, rule IDs): reuse it.
        fresh = Plan(backup_plan=document, creator_request_id=plan.creator_request_id, backend=self.backup_backend)
        plan.backup_plan = fresh.backup_plan
        plan.version_id = fresh.version_id
        return json.dumps(
            {
                "BackupPlanId": plan.backup_plan_id,
                "BackupPlanArn": plan.backup_plan_arn,
                "CreationDate": plan.creation_date,
                "VersionId": plan.version_id,
            }
        )

    BackupResponse.update_backup_plan = update_backup_plan


@rule("backup", "missing-api")
def recovery_points_api() -> None:
    """ListRecoveryPointsByBackupVault (empty: the emulator runs no backup jobs);
    unknown vault: ResourceNotFoundException."""
    backup_urls.url_paths["{0}/backup-vaults/(?P<name>[^/]+)/recovery-points/$"] = BackupResponse.dispatch

    def list_recovery_points_by_backup_vault(self: Any) -> str:
        name = _path_part(self.path, "/backup-vaults/")
        self.backup_backend.describe_backup_vault(name)
        return json.dumps({"RecoveryPoints": []})

    BackupResponse.list_recovery_points_by_backup_vault = list_recovery_points_by_backup_vault


@rule("backup", "refusal")
def plan_with_selections_cannot_be_deleted() -> None:
    """DeleteBackupPlan fails with InvalidRequestException while the plan has
    selections; a deleted plan frees its name and drops its tags."""

    @wrap(BackupBackend, "delete_backup_plan")
    def delete_backup_plan(original: Any, self: Any, backup_plan_id: str) -> Any:
        _live_plan(self, backup_plan_id)
        if any(s["plan"] == backup_plan_id for s in _selections(self).values()):
            raise InvalidRequestException(
                msg="Related backup plan selections must be deleted prior to backup plan deletion."
            )
        result = original(self, backup_plan_id)
        plan = self.plans[backup_plan_id]
        self.tagger.delete_all_tags_for_resource(plan.backup_plan_arn)
        return result

    @wrap(BackupBackend, "create_backup_plan")
    def create_backup_plan(original: Any, self: Any, backup_plan: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        name = backup_plan.get("BackupPlanName")
        # moto counts deleted plans as taken; AWS does not.
        deleted = {pid: p for pid, p in self.plans.items() if p.deletion_date is not None}
        for pid in deleted:
            del self.plans[pid]
        try:
            if any(p.backup_plan.get("BackupPlanName") == name for p in self.plans.values()):
                raise AlreadyExistsException(msg="Backup plan with the same plan document already exists")
            return original(self, backup_plan, *args, **kwargs)
        finally:
            self.plans.update(deleted)

    @wrap(BackupBackend, "delete_backup_vault")
    def delete_backup_vault(original: Any, self: Any, backup_vault_name: str) -> Any:
        vault = self.describe_backup_vault(backup_vault_name)
        self.tagger.delete_all_tags_for_resource(vault.backup_vault_arn)
        return original(self, backup_vault_name)
