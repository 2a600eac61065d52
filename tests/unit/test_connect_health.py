"""Connect's health in `claimsctl status`, from the embedded runner's status file (claimsctl.stack.connect)."""

from __future__ import annotations

from claimsctl.stack.connect import STATUS_STALE_S, connect_health

NOW = 1_800_000_000_000


def _status(connector_state: str = "RUNNING", *task_states: str, **extra: object) -> dict:
    return {"connector": "claims-postgres", "connector_state": connector_state,
            "tasks": [{"id": i, "state": s, "trace": None} for i, s in enumerate(task_states or ("RUNNING",))],
            "restarts": 0, "consecutive_failures": 0, "last_failure": None, "restart_due_at_ms": None,
            "updated_at_ms": NOW - 1000, **extra}


def test_connector_and_task_running_is_healthy() -> None:
    assert connect_health(_status(), NOW) == (True, "")


def test_no_status_yet_is_unhealthy() -> None:
    healthy, why = connect_health(None, NOW)
    assert healthy is False and "no connector status" in why


def test_stale_status_is_unhealthy_because_the_worker_stopped_reporting() -> None:
    healthy, why = connect_health(_status(updated_at_ms=NOW - int((STATUS_STALE_S + 5) * 1000)), NOW)
    assert healthy is False and "for 35 s" in why


def test_failed_task_waiting_for_its_restart_says_what_failed_and_when_it_restarts() -> None:
    status = _status("RUNNING", "FAILED", restart_due_at_ms=NOW + 8000, consecutive_failures=3)
    status["tasks"][0]["trace"] = ("org.apache.kafka.connect.errors.ConnectException: Unrecoverable exception from "
                                   "producer send callback | Caused by: UnknownServerException")
    healthy, why = connect_health(status, NOW)
    assert healthy is False
    assert why.startswith("task claims-postgres-0 FAILED (")
    assert "UnknownServerException" in why and "restart due in 8 s" in why


def test_failed_connector_is_unhealthy_with_the_last_failure() -> None:
    healthy, why = connect_health(_status("FAILED", "RUNNING", last_failure="connector claims-postgres FAILED: x"),
                                  NOW)
    assert healthy is False and why.startswith("connector claims-postgres FAILED (connector claims-postgres FAILED: x)")


def test_task_not_yet_running_after_a_restart_is_unhealthy() -> None:
    healthy, why = connect_health(_status("RUNNING", "UNASSIGNED"), NOW)
    assert healthy is False and "tasks: 0=UNASSIGNED" in why


def test_connector_without_tasks_is_unhealthy() -> None:
    status = _status()
    status["tasks"] = []
    healthy, why = connect_health(status, NOW)
    assert healthy is False and "tasks: none" in why


def test_running_task_whose_unacknowledged_records_stopped_falling_is_stuck() -> None:
    status = _status()
    status["tasks"][0].update(unacked=412, unacked_since_ms=NOW - 45_000)
    healthy, why = connect_health(status, NOW)
    assert healthy is False
    assert why == "task claims-postgres-0 RUNNING but 412 change events not acknowledged by the broker for 45 s"


def test_running_task_with_records_in_flight_for_a_moment_is_healthy() -> None:
    status = _status()
    status["tasks"][0].update(unacked=12, unacked_since_ms=NOW - 4_000)
    assert connect_health(status, NOW) == (True, "")
    status["tasks"][0].update(unacked=0, unacked_since_ms=None)
    assert connect_health(status, NOW) == (True, "")


def test_running_task_whose_producer_failed_a_record_is_unhealthy_before_connect_marks_it_failed() -> None:
    status = _status()
    status["tasks"][0].update(producer_errors=3, producer_error_at_ms=NOW - 2_000)
    healthy, why = connect_health(status, NOW)
    assert healthy is False
    assert why.startswith("task claims-postgres-0: 3 change events could not be delivered to the broker")


def test_restarted_task_with_a_fresh_producer_is_healthy() -> None:
    status = _status(restarts=1, consecutive_failures=1, last_failure="task claims-postgres-0 FAILED: x")
    status["tasks"][0].update(producer_errors=0, producer_error_at_ms=None, unacked=0, unacked_since_ms=None)
    assert connect_health(status, NOW) == (True, "")
