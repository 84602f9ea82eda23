"""AWS Backup: selections, plan updates, recovery points, and plan deletion rules."""

from __future__ import annotations

from conftest import error_code, name

ROLE = "arn:aws:iam::123456789012:role/backup"


def _plan(plan_name: str, vault: str, hour: int = 5) -> dict:
    return {
        "BackupPlanName": plan_name,
        "Rules": [{"RuleName": "daily", "TargetBackupVaultName": vault, "ScheduleExpression": f"cron(0 {hour} ? * * *)"}],
    }


def test_selections_updates_and_deletion_rules(emu):
    backup = emu.client("backup")
    vault, plan_name = name("vault"), name("plan")
    backup.create_backup_vault(BackupVaultName=vault, BackupVaultTags={"k": "v"})
    plan_id = backup.create_backup_plan(BackupPlan=_plan(plan_name, vault), BackupPlanTags={"k": "v"})["BackupPlanId"]

    selection = {"SelectionName": "db", "IamRoleArn": ROLE, "Resources": ["arn:aws:rds:us-east-1:123456789012:cluster:db"]}
    sid = backup.create_backup_selection(BackupPlanId=plan_id, BackupSelection=selection)["SelectionId"]
    got = backup.get_backup_selection(BackupPlanId=plan_id, SelectionId=sid)["BackupSelection"]
    assert got["Resources"] == selection["Resources"] and got["IamRoleArn"] == ROLE
    listed = backup.list_backup_selections(BackupPlanId=plan_id)["BackupSelectionsList"]
    assert [s["SelectionName"] for s in listed] == ["db"]
    code, _, _ = error_code(lambda: backup.create_backup_selection(BackupPlanId=plan_id, BackupSelection=selection))
    assert code == "AlreadyExistsException"

    updated = backup.update_backup_plan(BackupPlanId=plan_id, BackupPlan=_plan(plan_name, vault, hour=6))
    rules = backup.get_backup_plan(BackupPlanId=plan_id)["BackupPlan"]["Rules"]
    assert rules[0]["ScheduleExpression"] == "cron(0 6 ? * * *)"
    assert updated["VersionId"]

    assert backup.list_recovery_points_by_backup_vault(BackupVaultName=vault)["RecoveryPoints"] == []

    code, message, _ = error_code(lambda: backup.delete_backup_plan(BackupPlanId=plan_id))
    assert code == "InvalidRequestException" and "selections" in message
    backup.delete_backup_selection(BackupPlanId=plan_id, SelectionId=sid)
    code, _, _ = error_code(lambda: backup.get_backup_selection(BackupPlanId=plan_id, SelectionId=sid))
    assert code == "ResourceNotFoundException"
    backup.delete_backup_plan(BackupPlanId=plan_id)
    backup.delete_backup_vault(BackupVaultName=vault)

    # The deleted plan's name is free again, and neither it nor the vault is still tagged.
    backup.create_backup_plan(BackupPlan=_plan(plan_name, vault))
    tagged = emu.client("resourcegroupstaggingapi").get_resources(TagFilters=[{"Key": "k", "Values": ["v"]}])
    arns = [m["ResourceARN"] for m in tagged["ResourceTagMappingList"]]
    assert not [a for a in arns if plan_id in a or a.endswith(f":backup-vault:{vault}")], arns
