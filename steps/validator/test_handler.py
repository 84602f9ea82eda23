"""Unit tests of the transaction validator (handler.py), run by tests/run with the emulator's
virtualenv Python: `python -m unittest discover -s steps/validator`."""

import json
import unittest
from decimal import Decimal

import handler

GOOD = {
    "id": "tx-0001",
    "amount": "12.50",
    "currency": "EUR",
    "from_account": "acc-001",
    "to_account": "acc-002",
}


def tx(**changes):
    t = dict(GOOD)
    for k, v in changes.items():
        if v is None:
            t.pop(k, None)
        else:
            t[k] = v
    return t


def record(message_id, body):
    return {"messageId": message_id, "body": body if isinstance(body, str) else json.dumps(body)}


class ValidateTest(unittest.TestCase):
    def test_a_good_transaction_passes(self):
        self.assertEqual(handler.validate(GOOD), [])
        self.assertEqual(handler.validate(tx(amount=Decimal("0.01"))), [])
        self.assertEqual(handler.validate(tx(amount=100)), [])
        self.assertEqual(handler.validate(tx(amount="7.10")), [], "trailing zero is 1 decimal")

    def test_amount_rules(self):
        for bad in ["0", "-5.00", "1.234", "abc", "NaN", "Infinity", True, None, [], "1e13"]:
            self.assertTrue(handler.validate(tx(amount=bad)), f"accepted amount {bad!r}")
        self.assertTrue(handler.validate(tx(amount="1000"))  == [])
        errors = handler.validate(tx(amount="10.5", currency="JPY"))
        self.assertTrue(any("0 decimals" in e for e in errors), errors)
        self.assertEqual(handler.validate(tx(amount="1050", currency="JPY")), [])
        # Three-decimal currencies are still held to two decimals.
        self.assertTrue(handler.validate(tx(amount="1.125", currency="KWD")))

    def test_currency_and_ids(self):
        for bad in ["eur", "EURO", "XXX", "", 978, None]:
            self.assertTrue(handler.validate(tx(currency=bad)), f"accepted currency {bad!r}")
        for bad in ["", "has space", "x" * 129, 42, None]:
            self.assertTrue(handler.validate(tx(id=bad)), f"accepted id {bad!r}")
        for bad in ["ab", "-acc", "acc 1", 7, None]:
            self.assertTrue(handler.validate(tx(from_account=bad)), f"accepted account {bad!r}")
        errors = handler.validate(tx(to_account="acc-001"))
        self.assertTrue(any("differ" in e for e in errors), errors)
        self.assertEqual(handler.validate([GOOD]), ["the message is not a JSON object"])

    def test_session_checks(self):
        sessions = {
            "s-live": {"user_id": "u-1", "expires_at": 2_000},
            "s-old": {"user_id": "u-1", "expires_at": 500},
        }
        get = sessions.get
        ok = tx(session_id="s-live", user_id="u-1")
        self.assertEqual(handler.validate(ok, get, now=1_000), [])
        self.assertIn("the session does not exist",
                      handler.validate(tx(session_id="s-x", user_id="u-1"), get, now=1_000))
        self.assertIn("the session belongs to another user",
                      handler.validate(tx(session_id="s-live", user_id="u-2"), get, now=1_000))
        self.assertIn("the session has expired",
                      handler.validate(tx(session_id="s-old", user_id="u-1"), get, now=1_000))
        self.assertIn("user_id is required with session_id",
                      handler.validate(tx(session_id="s-live"), get, now=1_000))


class BatchTest(unittest.TestCase):
    def test_partial_batch_response_names_only_the_failures(self):
        event = {"Records": [
            record("m-1", GOOD),
            record("m-2", tx(amount="-1")),
            record("m-3", "{not json"),
            record("m-4", tx(id="tx-0002", amount=0.1)),
            record("m-5", tx(currency="ABC")),
        ]}
        with self.assertLogs(level="WARNING") as logs:
            out = handler.process(event)
        self.assertEqual(out, {"batchItemFailures": [
            {"itemIdentifier": "m-2"}, {"itemIdentifier": "m-3"}, {"itemIdentifier": "m-5"}]})
        self.assertEqual(len(logs.records), 3)
        self.assertIn('"transaction": "tx-0001"', logs.output[0])

    def test_all_good_reports_no_failures(self):
        out = handler.process({"Records": [record("m-1", GOOD)]})
        self.assertEqual(out, {"batchItemFailures": []})
        self.assertEqual(handler.process({"Records": []}), {"batchItemFailures": []})

    def test_unreadable_session_table_retries_the_message(self):
        def broken(_):
            raise handler.SessionCheckUnavailable("throttled")

        event = {"Records": [record("m-1", tx(session_id="s-1", user_id="u-1"))]}
        with self.assertLogs(level="WARNING"):
            out = handler.process(event, broken)
        self.assertEqual(out["batchItemFailures"], [{"itemIdentifier": "m-1"}])

    def test_float_amounts_keep_their_decimals(self):
        # 0.1 + 0.2 style binary floats must not turn 19.99 into 19.989999...
        self.assertEqual(handler.process({"Records": [record("m-1", '{"id": "t1", '
            '"amount": 19.99, "currency": "USD", "from_account": "acc-1", '
            '"to_account": "acc-2"}')]}), {"batchItemFailures": []})




class BackoffTest(unittest.TestCase):
    ARN = "arn:aws:sqs:us-east-1:123456789012:queue-transactions-prod"

    def failed(self, message_id, receives):
        return {
            "messageId": message_id,
            "body": "not json",
            "receiptHandle": f"rh-{message_id}",
            "eventSourceARN": self.ARN,
            "attributes": {"ApproximateReceiveCount": str(receives)},
        }

    def test_the_delay_doubles_with_each_receive_up_to_the_cap(self):
        self.assertEqual(
            [handler.retry_delay(n, 30, 900) for n in range(1, 8)],
            [30, 60, 120, 240, 480, 900, 900],
        )
        # Never beyond SQS's 12 hours, whatever the settings.
        self.assertEqual(handler.retry_delay(100, 3600, 10**9), 43200)
        self.assertEqual(handler.retry_delay("0", 30, 900), 30)

    def setUp(self):
        # The queue URL comes from the event's ARN here, not from the function's environment.
        self._url = handler.os.environ.pop("TRANSACTION_QUEUE_URL", None)

    def tearDown(self):
        if self._url is not None:
            handler.os.environ["TRANSACTION_QUEUE_URL"] = self._url

    def test_only_failed_messages_get_their_visibility_changed(self):
        calls = []
        event = {"Records": [self.failed("m1", 1), self.failed("m2", 3),
                             {**self.failed("ok", 1), "body": json.dumps(GOOD)}]}
        out = handler.process(
            event, change_visibility=lambda *a: calls.append(a), backoff=(30, 900)
        )
        self.assertEqual([f["itemIdentifier"] for f in out["batchItemFailures"]], ["m1", "m2"])
        url = "https://sqs.us-east-1.amazonaws.com/123456789012/queue-transactions-prod"
        self.assertEqual(calls, [(url, "rh-m1", 30), (url, "rh-m2", 120)])

    def test_a_failed_change_still_reports_the_failure(self):
        def broken(*_):
            raise RuntimeError("throttled")

        out = handler.process({"Records": [self.failed("m1", 2)]},
                              change_visibility=broken, backoff=(30, 900))
        self.assertEqual(out["batchItemFailures"], [{"itemIdentifier": "m1"}])

    def test_without_settings_nothing_is_changed(self):
        calls = []
        handler.process({"Records": [self.failed("m1", 2)]},
                        change_visibility=lambda *a: calls.append(a), backoff=None)
        self.assertEqual(calls, [])

    def test_queue_url_of_an_arn(self):
        self.assertIsNone(handler.queue_url_of("arn:aws:sns:us-east-1:1:t"))
        self.assertIsNone(handler.queue_url_of(None))
        self.assertEqual(
            handler.queue_url_of("arn:aws:sqs:eu-west-1:1:q"),
            "https://sqs.eu-west-1.amazonaws.com/1/q",
        )


if __name__ == "__main__":
    unittest.main()


class FakeLambda:
    """list/update_event_source_mapping of a function with two mappings, paged."""

    def __init__(self):
        self.updates = []
        self.states = {"u1": "Enabled", "u2": "Enabled"}

    def list_event_source_mappings(self, FunctionName, Marker=None):
        arn = "arn:aws:lambda:us-east-1:123456789012:function:fn"
        if Marker is None:
            return {"EventSourceMappings": [
                {"UUID": "u1", "State": self.states["u1"], "FunctionArn": arn}
            ], "NextMarker": "next"}
        return {"EventSourceMappings": [{"UUID": "u2", "State": self.states["u2"]}]}

    def update_event_source_mapping(self, UUID, Enabled, FunctionName=None):
        self.updates.append((UUID, Enabled))
        self.states[UUID] = "Enabled" if Enabled else "Disabled"


def alarm_event(state):
    return {
        "source": "aws.cloudwatch",
        "alarmArn": "arn:aws:cloudwatch:us-east-1:123456789012:alarm:alarm-validator-breaker-t",
        "alarmData": {"alarmName": "alarm-validator-breaker-t", "state": {"value": state}},
    }


class BreakerTests(unittest.TestCase):
    def test_alarm_opens_and_ok_closes_the_breaker(self):
        fake = FakeLambda()
        out = handler.on_breaker(handler.breaker_state(alarm_event("ALARM")), "fn", fake)
        self.assertEqual(out["breaker"], "open")
        self.assertEqual(fake.updates, [("u1", False), ("u2", False)])
        fake.updates.clear()
        out = handler.on_breaker(handler.breaker_state(alarm_event("OK")), "fn", fake)
        self.assertEqual(out["breaker"], "closed")
        self.assertEqual(fake.updates, [("u1", True), ("u2", True)])

    def test_insufficient_data_and_sqs_batches_change_nothing(self):
        fake = FakeLambda()
        state = handler.breaker_state(alarm_event("INSUFFICIENT_DATA"))
        out = handler.on_breaker(state, "fn", fake)
        self.assertEqual(out["breaker"], "unchanged")
        self.assertEqual(fake.updates, [])
        self.assertIsNone(handler.breaker_state({"Records": []}))

    def test_each_batch_reports_processed_and_failed(self):
        record = handler.metrics_record("fn-validator-t", 10, 3, now_ms=1000)
        self.assertEqual((record["Processed"], record["Failed"]), (10, 3))
        spec = record["_aws"]["CloudWatchMetrics"][0]
        self.assertEqual(spec["Namespace"], "FintechInfra/Validator")
        self.assertEqual(spec["Dimensions"], [["FunctionName"]])
        self.assertEqual([m["Name"] for m in spec["Metrics"]], ["Processed", "Failed"])
        self.assertEqual(record["FunctionName"], "fn-validator-t")


    def test_a_mapping_already_in_the_wanted_state_is_left_alone(self):
        fake = FakeLambda()
        fake.states["u2"] = "Disabled"
        handler.on_breaker("ALARM", "fn", fake)
        self.assertEqual(fake.updates, [("u1", False)])


class FakeCloudWatch:
    """describe_alarms of the breaker alarm in `state` (None: no such alarm)."""

    def __init__(self, state):
        self.state = state
        self.asked = []

    def describe_alarms(self, AlarmNames):
        self.asked.append(AlarmNames)
        if self.state is None:
            return {"MetricAlarms": []}
        return {"MetricAlarms": [{"AlarmName": AlarmNames[0], "StateValue": self.state}]}


class ReconcilerTests(unittest.TestCase):
    def test_the_schedule_input_asks_for_a_reconcile(self):
        self.assertTrue(handler.is_reconcile({"breaker": "reconcile"}))
        self.assertFalse(handler.is_reconcile(alarm_event("OK")))
        self.assertFalse(handler.is_reconcile({"Records": []}))

    def test_a_lost_resume_is_caught(self):
        # The alarm is back to OK but its invocation never came: the mappings are disabled.
        fake = FakeLambda()
        fake.states = {"u1": "Disabled", "u2": "Disabled"}
        cw = FakeCloudWatch("OK")
        out = handler.reconcile("alarm-validator-breaker-t", "fn", fake, cw)
        self.assertEqual(cw.asked, [["alarm-validator-breaker-t"]])
        self.assertEqual(out["breaker"], "closed")
        self.assertEqual(fake.updates, [("u1", True), ("u2", True)])

    def test_a_lost_pause_is_caught(self):
        fake = FakeLambda()
        out = handler.reconcile("a", "fn", fake, FakeCloudWatch("ALARM"))
        self.assertEqual(out["breaker"], "open")
        self.assertEqual(fake.updates, [("u1", False), ("u2", False)])

    def test_in_step_with_the_alarm_nothing_changes(self):
        fake = FakeLambda()
        for state in ("OK", "INSUFFICIENT_DATA"):
            out = handler.reconcile("a", "fn", fake, FakeCloudWatch(state))
            self.assertEqual(out["mappings"], [])
        self.assertEqual(fake.updates, [])

    def test_without_the_alarm_nothing_changes(self):
        fake = FakeLambda()
        fake.states = {"u1": "Disabled", "u2": "Disabled"}
        out = handler.reconcile("a", "fn", fake, FakeCloudWatch(None))
        self.assertEqual(out["breaker"], "unchanged")
        self.assertEqual(fake.updates, [])


class DeadlineTests(unittest.TestCase):
    def test_records_that_no_longer_fit_fail_at_once(self):
        times = iter([60000, 60000, 1000])
        event = {"Records": [record("a", json.dumps(GOOD)), record("b", json.dumps(GOOD)),
                             record("c", json.dumps(GOOD))]}
        out = handler.process(event, remaining_ms=lambda: next(times))
        self.assertEqual(out["batchItemFailures"], [{"itemIdentifier": "c"}])
