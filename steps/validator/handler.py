"""Transaction validator: the Lambda function fed by the SQS transaction queue.

Each SQS record's body is one transaction, a JSON object:

    {"id": "tx-123", "amount": "12.50", "currency": "EUR",
     "from_account": "acc-001", "to_account": "acc-002",
     "user_id": "u-1", "session_id": "s-1"}

A transaction is valid when:
- `id` is 1 to 128 letters, digits, `-` or `_`;
- `amount` is a JSON number or a decimal string, greater than 0, at most 1e12, with at
  most 2 decimals (fewer for currencies whose minor unit is smaller, e.g. 0 for JPY);
- `currency` is an active ISO 4217 code;
- `from_account` and `to_account` are account ids (3 to 64 letters, digits, `-` or `_`,
  starting with a letter or digit) and differ;
- if `session_id` is given (with `user_id`), the session exists in the session table
  (SESSIONS_TABLE), belongs to that user and has not expired (SESSIONS_TTL_ATTRIBUTE,
  epoch seconds).

The function answers with a partial batch response: `batchItemFailures` lists the
messageIds of the records that failed, so SQS deletes the others and only the failing
ones become visible again and, after the queue's max receives, move to the dead-letter
queue. The event source mapping must have `ReportBatchItemFailures` in its
FunctionResponseTypes for this to take effect.

Retries back off exponentially (seed 002): before answering, the function sets each failed
message's visibility timeout to RETRY_BASE_SECS x 2^(receives - 1), at most
RETRY_MAX_SECS, where receives is the message's ApproximateReceiveCount. Lambda's event
source mapping leaves a failed message's visibility as it is, so without this every retry
would wait the queue's one visibility timeout. A failure to change it (throttling, a
receipt handle gone stale) is logged and the queue's timeout applies.

Circuit breaker (seed 002): every batch reports how many transactions it processed and how
many failed as CloudWatch metrics (the embedded metric format, in the function's log:
namespace METRICS_NAMESPACE, dimension FunctionName). The stack's breaker alarm watches the
failure rate; its ALARM and OK actions invoke this function with the alarm's state change.
ALARM opens the breaker: the function disables its own event source mappings, so nothing
is consumed (and no message spends its receives on a failing dependency) while the alarm
holds. With consumption paused the metrics stop, the alarm treats missing data as not
breaching and goes back to OK after its evaluation periods (the cool-down): the function
enables its mappings again, and a failure rate still above the threshold opens the breaker
again.
"""

import json
import logging
import os
import re
import time
from decimal import Decimal, InvalidOperation

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)

# Active ISO 4217 codes and their minor units (decimals), from the ISO 4217 list.
MINOR_UNITS = {
    "AED": 2, "AFN": 2, "ALL": 2, "AMD": 2, "ANG": 2, "AOA": 2, "ARS": 2, "AUD": 2, "AWG": 2,
    "AZN": 2, "BAM": 2, "BBD": 2, "BDT": 2, "BGN": 2, "BHD": 3, "BIF": 0, "BMD": 2, "BND": 2,
    "BOB": 2, "BRL": 2, "BSD": 2, "BTN": 2, "BWP": 2, "BYN": 2, "BZD": 2, "CAD": 2, "CDF": 2,
    "CHF": 2, "CLP": 0, "CNY": 2, "COP": 2, "CRC": 2, "CUP": 2, "CVE": 2, "CZK": 2, "DJF": 0,
    "DKK": 2, "DOP": 2, "DZD": 2, "EGP": 2, "ERN": 2, "ETB": 2, "EUR": 2, "FJD": 2, "FKP": 2,
    "GBP": 2, "GEL": 2, "GHS": 2, "GIP": 2, "GMD": 2, "GNF": 0, "GTQ": 2, "GYD": 2, "HKD": 2,
    "HNL": 2, "HTG": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2, "IQD": 3, "IRR": 2, "ISK": 0,
    "JMD": 2, "JOD": 3, "JPY": 0, "KES": 2, "KGS": 2, "KHR": 2, "KMF": 0, "KPW": 2, "KRW": 0,
    "KWD": 3, "KYD": 2, "KZT": 2, "LAK": 2, "LBP": 2, "LKR": 2, "LRD": 2, "LSL": 2, "LYD": 3,
    "MAD": 2, "MDL": 2, "MGA": 2, "MKD": 2, "MMK": 2, "MNT": 2, "MOP": 2, "MRU": 2, "MUR": 2,
    "MVR": 2, "MWK": 2, "MXN": 2, "MYR": 2, "MZN": 2, "NAD": 2, "NGN": 2, "NIO": 2, "NOK": 2,
    "NPR": 2, "NZD": 2, "OMR": 3, "PAB": 2, "PEN": 2, "PGK": 2, "PHP": 2, "PKR": 2, "PLN": 2,
    "PYG": 0, "QAR": 2, "RON": 2, "RSD": 2, "RUB": 2, "RWF": 0, "SAR": 2, "SBD": 2, "SCR": 2,
    "SDG": 2, "SEK": 2, "SGD": 2, "SHP": 2, "SLE": 2, "SOS": 2, "SRD": 2, "SSP": 2, "STN": 2,
    "SVC": 2, "SYP": 2, "SZL": 2, "THB": 2, "TJS": 2, "TMT": 2, "TND": 3, "TOP": 2, "TRY": 2,
    "TTD": 2, "TWD": 2, "TZS": 2, "UAH": 2, "UGX": 0, "USD": 2, "UYU": 2, "UZS": 2, "VES": 2,
    "VND": 0, "VUV": 0, "WST": 2, "XAF": 0, "XCD": 2, "XOF": 0, "XPF": 0, "YER": 2, "ZAR": 2,
    "ZMW": 2, "ZWG": 2,
}

MAX_DECIMALS = 2
MAX_AMOUNT = Decimal("1000000000000")
TX_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
ACCOUNT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{2,63}")


class SessionCheckUnavailable(Exception):
    """The session table could not be read (throttling, network): retry the message."""


def parse_amount(value):
    """The amount as an exact Decimal, or None if it is not a finite decimal number."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal, str, float)):
        return None
    if isinstance(value, float):
        value = repr(value)  # only reached when a caller parsed floats itself
    try:
        amount = Decimal(str(value).strip()) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def decimals_of(amount):
    exponent = amount.normalize().as_tuple().exponent
    return max(0, -exponent)


def validate(tx, get_session=None, now=None):
    """The reasons `tx` (a parsed message body) is invalid; empty if it is valid."""
    if not isinstance(tx, dict):
        return ["the message is not a JSON object"]
    errors = []
    tx_id = tx.get("id")
    if not isinstance(tx_id, str) or not TX_ID.fullmatch(tx_id):
        errors.append("id must be 1 to 128 letters, digits, '-' or '_'")

    currency = tx.get("currency")
    if not isinstance(currency, str) or currency not in MINOR_UNITS:
        errors.append(f"currency {currency!r} is not an active ISO 4217 code")
        allowed = MAX_DECIMALS
    else:
        allowed = min(MAX_DECIMALS, MINOR_UNITS[currency])

    amount = parse_amount(tx.get("amount"))
    if amount is None:
        errors.append("amount must be a decimal number")
    elif amount <= 0:
        errors.append("amount must be greater than 0")
    elif amount > MAX_AMOUNT:
        errors.append(f"amount must be at most {MAX_AMOUNT}")
    elif decimals_of(amount) > allowed:
        errors.append(f"amount has more than {allowed} decimals for {currency}")

    accounts = []
    for field in ("from_account", "to_account"):
        value = tx.get(field)
        if not isinstance(value, str) or not ACCOUNT_ID.fullmatch(value):
            errors.append(f"{field} must be an account id (3 to 64 letters, digits, '-', '_')")
        else:
            accounts.append(value)
    if len(accounts) == 2 and accounts[0] == accounts[1]:
        errors.append("from_account and to_account must differ")

    session_id = tx.get("session_id")
    if session_id is not None:
        user_id = tx.get("user_id")
        if not isinstance(session_id, str) or not session_id:
            errors.append("session_id must be a non-empty string")
        elif not isinstance(user_id, str) or not user_id:
            errors.append("user_id is required with session_id")
        elif get_session is not None:
            session = get_session(session_id)
            now = time.time() if now is None else now
            if session is None:
                errors.append("the session does not exist")
            elif session.get("user_id") != user_id:
                errors.append("the session belongs to another user")
            elif session.get("expires_at") is not None and session["expires_at"] <= now:
                errors.append("the session has expired")
    return errors


def dynamodb_session_getter(table_name, ttl_attribute):
    """Reads a session from the DynamoDB session table (GetItem, strongly consistent)."""
    import boto3  # in the Lambda runtime; imported here so the tests need no AWS SDK
    from botocore.exceptions import BotoCoreError, ClientError

    from botocore.config import Config

    # Short timeouts, like the SQS client's: a hung table must become a counted, retried
    # failure within the function's timeout (the breaker sees counted failures only), not a
    # timed-out batch that reports nothing.
    client = boto3.client(
        "dynamodb",
        config=Config(connect_timeout=2, read_timeout=3, retries={"max_attempts": 2}),
    )

    def get(session_id):
        try:
            item = client.get_item(
                TableName=table_name,
                Key={"session_id": {"S": session_id}},
                ProjectionExpression="user_id, #ttl",
                ExpressionAttributeNames={"#ttl": ttl_attribute},
                ConsistentRead=True,
            ).get("Item")
        except (BotoCoreError, ClientError) as e:
            raise SessionCheckUnavailable(str(e)) from e
        if item is None:
            return None
        expires = item.get(ttl_attribute, {}).get("N")
        return {
            "user_id": item.get("user_id", {}).get("S"),
            "expires_at": int(Decimal(expires)) if expires is not None else None,
        }

    return get


# SQS's limit on a visibility timeout.
MAX_VISIBILITY_SECS = 43200


def retry_delay(receive_count, base_secs, max_secs):
    """Seconds before a message that failed on its `receive_count`-th receive is retried:
    base x 2^(receives - 1), capped at `max_secs` and at SQS's 12 hours."""
    receives = max(1, int(receive_count))
    # 2^n overflows nothing in Python, but a huge exponent is pointless work.
    delay = base_secs * (2 ** min(receives - 1, 32))
    return int(min(delay, max_secs, MAX_VISIBILITY_SECS))


def queue_url_of(event_source_arn):
    """The queue URL of an SQS ARN (arn:aws:sqs:<region>:<account>:<name>); None if it is
    not one. SQS accepts the standard https://sqs.<region>.amazonaws.com/<account>/<name>."""
    parts = (event_source_arn or "").split(":")
    if len(parts) != 6 or parts[:3] != ["arn", "aws", "sqs"]:
        return None
    return f"https://sqs.{parts[3]}.amazonaws.com/{parts[4]}/{parts[5]}"


def back_off(failed_records, change_visibility, base_secs, max_secs, queue_url=None):
    """Sets each failed record's visibility to its retry delay. `change_visibility(url,
    receipt_handle, seconds)` is SQS's ChangeMessageVisibility; its failures are logged."""
    for record in failed_records:
        url = queue_url or queue_url_of(record.get("eventSourceARN"))
        handle = record.get("receiptHandle")
        if url is None or handle is None:
            continue
        count = record.get("attributes", {}).get("ApproximateReceiveCount", "1")
        delay = retry_delay(count, base_secs, max_secs)
        try:
            change_visibility(url, handle, delay)
        except Exception as e:  # noqa: BLE001 - the queue's own timeout then applies
            LOG.warning(
                json.dumps({"messageId": record.get("messageId"), "backoff_failed": str(e)})
            )


# Milliseconds kept back for the backoff and the metrics once the batch is cut short.
RESERVE_MS = 5000


def process(event, get_session=None, now=None, change_visibility=None, backoff=None,
            remaining_ms=None):
    """The partial batch response for an SQS event; with `change_visibility` and `backoff`
    ((base, max) seconds), the failed messages are retried after a growing delay. With
    `remaining_ms` (the invocation's time left), records that no longer fit fail at once:
    they are retried, and the batch still reports its metrics instead of timing out."""
    failures = []
    failed_records = []
    for record in event.get("Records", []):
        message_id = record.get("messageId")
        tx = None
        if remaining_ms is not None and remaining_ms() < RESERVE_MS:
            LOG.warning(json.dumps({"messageId": message_id, "errors": ["no time left; retried"]}))
            failures.append({"itemIdentifier": message_id})
            failed_records.append(record)
            continue
        try:
            tx = json.loads(record.get("body") or "", parse_float=Decimal)
            errors = validate(tx, get_session, now)
        except ValueError:
            errors = ["the body is not JSON"]
        except SessionCheckUnavailable as e:
            errors = [f"the session could not be checked ({e}); retried"]
        if errors:
            tx_id = tx.get("id") if isinstance(tx, dict) else None
            LOG.warning(
                json.dumps({"messageId": message_id, "transaction": tx_id, "errors": errors})
            )
            failures.append({"itemIdentifier": message_id})
            failed_records.append(record)
    if failed_records and change_visibility is not None and backoff is not None:
        back_off(failed_records, change_visibility, backoff[0], backoff[1],
                 os.environ.get("TRANSACTION_QUEUE_URL"))
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        # The breaker alarm's inputs: printed, CloudWatch Logs extracts the metrics.
        print(json.dumps(metrics_record(
            os.environ["AWS_LAMBDA_FUNCTION_NAME"], len(event.get("Records", [])), len(failures)
        )))
    return {"batchItemFailures": failures}


METRICS_NAMESPACE = "FintechInfra/Validator"


def metrics_record(function_name, processed, failed, now_ms=None):
    """One log line in CloudWatch's embedded metric format: Processed and Failed (counts)
    of one batch, for the breaker alarm's failure rate."""
    return {
        "_aws": {
            "Timestamp": int(now_ms if now_ms is not None else time.time() * 1000),
            "CloudWatchMetrics": [{
                "Namespace": METRICS_NAMESPACE,
                "Dimensions": [["FunctionName"]],
                "Metrics": [
                    {"Name": "Processed", "Unit": "Count"},
                    {"Name": "Failed", "Unit": "Count"},
                ],
            }],
        },
        "FunctionName": function_name,
        "Processed": processed,
        "Failed": failed,
    }


def breaker_state(event):
    """The new state of the breaker alarm when CloudWatch invokes the function as its
    action ("ALARM", "OK", ...); None for any other event (an SQS batch)."""
    if event.get("source") != "aws.cloudwatch":
        return None
    state = (event.get("alarmData") or {}).get("state") or {}
    return state.get("value")


def set_consumption(enabled, function_name, lambda_client):
    """Enables or disables every event source mapping of the function; returns the UUIDs it
    changed. The breaker only touches the function's own mappings (its role may update no
    others: the `lambda:FunctionArn` condition, which the request names explicitly). A
    mapping already in the wanted state is left alone; one still settling from an earlier
    change (ResourceInUseException) is retried a few times."""
    wanted = ("Enabled", "Enabling") if enabled else ("Disabled", "Disabling")
    uuids = []
    marker = None
    while True:
        kwargs = {"FunctionName": function_name}
        if marker:
            kwargs["Marker"] = marker
        page = lambda_client.list_event_source_mappings(**kwargs)
        for mapping in page.get("EventSourceMappings", []):
            if mapping.get("State") in wanted:
                continue
            update = {"UUID": mapping["UUID"], "Enabled": enabled}
            if mapping.get("FunctionArn"):
                update["FunctionName"] = mapping["FunctionArn"]
            for attempt in range(4):
                try:
                    lambda_client.update_event_source_mapping(**update)
                    break
                except Exception as e:  # noqa: BLE001 - only "in use" is retried
                    if "ResourceInUse" not in type(e).__name__ + str(e) or attempt == 3:
                        raise
                    time.sleep(2 ** attempt)
            uuids.append(mapping["UUID"])
        marker = page.get("NextMarker")
        if not marker:
            return uuids


def on_breaker(state, function_name, lambda_client):
    """Opens (ALARM) or closes (OK) the breaker; INSUFFICIENT_DATA changes nothing."""
    if state not in ("ALARM", "OK"):
        return {"breaker": "unchanged", "state": state}
    open_ = state == "ALARM"
    uuids = set_consumption(not open_, function_name, lambda_client)
    result = {"breaker": "open" if open_ else "closed", "mappings": uuids}
    LOG.warning(json.dumps(result))
    return result


def is_reconcile(event):
    """True for the breaker's scheduled reconciler: its EventBridge rule sends this input."""
    return event.get("breaker") == "reconcile"


def reconcile(alarm_name, function_name, lambda_client, cloudwatch_client):
    """Sets consumption to match the breaker alarm: paused while it is in ALARM, running
    otherwise (OK, or INSUFFICIENT_DATA of a new alarm). This catches an alarm invocation
    that was lost (an asynchronous invocation that failed or was throttled past Lambda's
    retries), which would otherwise leave consumption paused, or running, until the next
    `up`. A missing alarm (the alarms step has not run yet) leaves everything alone."""
    alarms = cloudwatch_client.describe_alarms(AlarmNames=[alarm_name]).get("MetricAlarms", [])
    if not alarms:
        return {"breaker": "unchanged", "state": None}
    state = alarms[0].get("StateValue")
    open_ = state == "ALARM"
    uuids = set_consumption(not open_, function_name, lambda_client)
    result = {"breaker": "open" if open_ else "closed", "state": state, "mappings": uuids,
              "reconciled": True}
    if uuids:
        # Only a correction is news: a lost invocation was caught.
        LOG.warning(json.dumps(result))
    return result


def cloudwatch_client():
    """The CloudWatch client of the runtime, with short timeouts like the others."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "cloudwatch",
        config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 3}),
    )


def sqs_visibility_changer():
    """ChangeMessageVisibility through the SQS client of the Lambda runtime."""
    import boto3  # in the Lambda runtime; imported here so the tests need no AWS SDK
    from botocore.config import Config

    # Short timeouts and one retry: a slow SQS must not hold the batch past the function's
    # timeout (the whole batch would then be retried); the queue's own timeout is the
    # fallback.
    client = boto3.client(
        "sqs",
        config=Config(connect_timeout=2, read_timeout=3, retries={"max_attempts": 2}),
    )

    def change(url, receipt_handle, seconds):
        client.change_message_visibility(
            QueueUrl=url, ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )

    return change


def backoff_settings():
    """(base, max) seconds from RETRY_BASE_SECS and RETRY_MAX_SECS; None when unset."""
    base, top = os.environ.get("RETRY_BASE_SECS"), os.environ.get("RETRY_MAX_SECS")
    if not base or not top:
        return None
    return int(base), int(top)


_GETTER = None
_CHANGER = None


def lambda_client():
    """The Lambda client of the runtime, with short timeouts like the SQS one."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "lambda",
        config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 3}),
    )


def handler(event, context):
    global _GETTER, _CHANGER
    state = breaker_state(event)
    if state is not None:
        return on_breaker(state, context.function_name, lambda_client())
    if is_reconcile(event):
        return reconcile(os.environ["BREAKER_ALARM"], context.function_name, lambda_client(),
                         cloudwatch_client())
    if _GETTER is None and os.environ.get("SESSIONS_TABLE"):
        _GETTER = dynamodb_session_getter(
            os.environ["SESSIONS_TABLE"], os.environ.get("SESSIONS_TTL_ATTRIBUTE", "expires_at")
        )
    backoff = backoff_settings()
    if _CHANGER is None and backoff is not None:
        _CHANGER = sqs_visibility_changer()
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return process(event, _GETTER, change_visibility=_CHANGER, backoff=backoff,
                   remaining_ms=remaining)
