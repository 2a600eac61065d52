"""The embedded Lambda host's Runtime API: a function process that dies mid-invocation is noticed at once."""

from __future__ import annotations

import time

from claimsctl.stack.lambda_runtime import RuntimeApi, messages_to_delete


def test_invocation_of_a_dead_execution_environment_fails_at_once_and_deletes_nothing() -> None:
    api = RuntimeApi(0, "arn:aws:lambda:us-east-1:000000000000:function:f")  # port 0: any free port
    try:
        started = time.monotonic()
        invocation = api.invoke({"Records": []}, timeout_s=60, alive=lambda: False)
        assert time.monotonic() - started < 5  # not the 60 s function timeout (found by tests/faults)
        assert invocation.outcome == "error" and b"Runtime.ExitError" in invocation.result
        assert messages_to_delete([{"MessageId": "m", "ReceiptHandle": "r"}], invocation) == []
        assert not api.in_flight
    finally:
        api.close()
