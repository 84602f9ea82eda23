"""CloudWatch over Smithy RPC v2 CBOR, the protocol current SDKs (botocore 1.44 here, the
AWS SDK for Rust in fintech-infra) use: the bridge in fidelity/cbor_bridge.py."""

from __future__ import annotations

import datetime
import json

from conftest import error_code, name


def test_alarms_round_trip_over_cbor_with_timestamps_and_expressions(emu):
    cw = emu.cbor_client("cloudwatch")
    assert cw.meta.service_model.protocol == "smithy-rpc-v2-cbor"
    alarm = name("alarm")
    cw.put_metric_alarm(
        AlarmName=alarm, AlarmDescription="db cpu", ActionsEnabled=True,
        AlarmActions=["arn:aws:sns:us-east-1:123456789012:alerts"],
        Namespace="AWS/RDS", MetricName="CPUUtilization", Statistic="Average",
        Dimensions=[{"Name": "DBClusterIdentifier", "Value": "aurora-dev"}],
        Period=300, EvaluationPeriods=3, Threshold=80.5, ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
    )
    expr = name("expr")
    cw.put_metric_alarm(
        AlarmName=expr, EvaluationPeriods=1, Threshold=5, ComparisonOperator="GreaterThanThreshold",
        Metrics=[
            {"Id": "errors", "ReturnData": False, "MetricStat": {"Metric": {
                "Namespace": "AWS/ApplicationELB", "MetricName": "HTTPCode_Target_5XX_Count",
                "Dimensions": [{"Name": "LoadBalancer", "Value": "app/alb-dev/1"}]}, "Period": 60, "Stat": "Sum"}},
            {"Id": "result", "Expression": "errors * 2", "Label": "x", "ReturnData": True},
        ],
    )
    found = {a["AlarmName"]: a for a in cw.describe_alarms(AlarmNames=[alarm, expr])["MetricAlarms"]}
    a = found[alarm]
    assert a["Threshold"] == 80.5
    assert a["Dimensions"] == [{"Name": "DBClusterIdentifier", "Value": "aurora-dev"}]
    assert a["AlarmActions"] == ["arn:aws:sns:us-east-1:123456789012:alerts"]
    assert isinstance(a["StateUpdatedTimestamp"], datetime.datetime)  # CBOR tag 1
    assert [m["Id"] for m in found[expr]["Metrics"]] == ["errors", "result"]

    # The request log names the operation and its parameters, decoded from CBOR.
    logged = [r for r in emu.requests() if r["operation"] == "PutMetricAlarm"]
    assert logged and logged[-1]["params"]["AlarmName"] == expr

    cw.delete_alarms(AlarmNames=[alarm, expr])
    assert cw.describe_alarms(AlarmNames=[alarm, expr])["MetricAlarms"] == []


def test_dashboard_round_trip_and_not_found_error_code(emu):
    cw = emu.cbor_client("cloudwatch")
    dash = name("dash")
    code, _, status = error_code(lambda: cw.get_dashboard(DashboardName=dash))
    assert (code, status) == ("ResourceNotFound", 404)
    body = {"widgets": [{"type": "text", "x": 0, "y": 0, "width": 6, "height": 2,
                         "properties": {"markdown": "hi"}}]}
    cw.put_dashboard(DashboardName=dash, DashboardBody=json.dumps(body))
    got = cw.get_dashboard(DashboardName=dash)
    assert json.loads(got["DashboardBody"]) == body
    cw.delete_dashboards(DashboardNames=[dash])
    assert error_code(lambda: cw.get_dashboard(DashboardName=dash))[0] == "ResourceNotFound"
    failed = [r for r in emu.requests() if r["operation"] == "GetDashboard" and r["error"]]
    assert failed and failed[-1]["error"] == "ResourceNotFound"
