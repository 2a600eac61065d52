"""The embedded stack's Lambda: the real Python runtime client (`awslambdaric`) fed from the landing queue.

AWS runs the document function as: S3 notification -> SQS queue -> Lambda event source mapping (polls the queue,
invokes the function with up to `batch_size` messages, deletes the messages the function did not report as failed:
`ReportBatchItemFailures`) -> the Lambda service hands the event to the runtime client in the function's execution
environment through the Runtime API. Neither the event source mapping nor the Runtime API exists off AWS here
(no Docker for the runtime interface emulator), so this process provides both, and the function itself runs
unchanged under `python -m awslambdaric <handler>` as a child process:

    SQS (moto) --poll--> [event source mapping] --invocation--> [Runtime API :port] <--next/response-- awslambdaric

Semantics kept from AWS: one invocation at a time per execution environment; the function's response decides
which messages are deleted (all but `batchItemFailures`; none when the invocation errors or times out); a timed-out
or crashed function is replaced by a new execution environment (process restart, module init runs again); messages
not deleted come back after the visibility timeout, and after `maxReceiveCount` receives the queue's redrive policy
moves them to the dead-letter queue. Run: `python -m claimsctl.stack.lambda_runtime --handler module.function`
(settings from CLAIMS_* environment variables). Status and counters: `<state>/lambda/status.json`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger("claims.lambda_runtime")

API_PREFIX = "/2018-06-01/runtime"
FUNCTION_NAME = "claims-document-processor"


@dataclass
class Invocation:
    request_id: str
    body: bytes
    deadline_ms: int
    done: threading.Event = field(default_factory=threading.Event)
    outcome: str = ""            # "response" | "error"
    result: bytes = b""


class RuntimeApi:
    """The Lambda Runtime API (next / response / error / init error) over one pending-invocation slot.

    A `next` request blocks until there is work. Each execution environment is a generation: when the function
    process is replaced, `new_generation` releases `next` requests still parked by the dead one, so they cannot
    take an invocation meant for its successor.
    """

    def __init__(self, port: int, function_arn: str) -> None:
        self.function_arn = function_arn
        self._cond = threading.Condition()
        self._work: Invocation | None = None
        self._generation = 0
        self.in_flight: dict[str, Invocation] = {}
        self.init_errors = 0
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt: str, *args: Any) -> None:  # quiet: one line per request is noise
                log.debug(fmt, *args)

            def _reply(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 - http.server naming
                if self.path != f"{API_PREFIX}/invocation/next":
                    return self._reply(404)
                invocation = api.take_work()
                if invocation is None:  # the environment that asked was replaced
                    return self._reply(503, b'{"errorMessage":"execution environment replaced"}')
                self._reply(200, invocation.body, {
                    "Content-Type": "application/json",
                    "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": api.function_arn,
                    "Lambda-Runtime-Trace-Id": f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}",
                })

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.path == f"{API_PREFIX}/init/error":
                    api.init_errors += 1
                    log.error("function init failed: %s", body[:2000].decode(errors="replace"))
                    return self._reply(202)
                parts = self.path[len(API_PREFIX):].strip("/").split("/")
                if len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                    invocation = api.in_flight.pop(parts[1], None)
                    if invocation is None:
                        return self._reply(400, b'{"errorMessage":"unknown request id"}')
                    invocation.outcome, invocation.result = parts[2], body
                    invocation.done.set()
                    return self._reply(202)
                return self._reply(404)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="runtime-api", daemon=True).start()

    def take_work(self) -> Invocation | None:
        """For a `next` request: the invocation to run, or None when its environment was replaced meanwhile."""
        with self._cond:
            generation = self._generation
            while self._work is None and generation == self._generation:
                self._cond.wait(1.0)
            if generation != self._generation:
                return None
            invocation, self._work = self._work, None
            self.in_flight[invocation.request_id] = invocation
            return invocation

    def new_generation(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def invoke(self, event: dict[str, Any], timeout_s: float,
               alive: Callable[[], bool] = lambda: True) -> Invocation:
        """Hand `event` to the function; returns when it answered, when `timeout_s` passed (outcome ""), or as soon
        as `alive()` says the execution environment died (outcome "error", `Runtime.ExitError`, as AWS reports a
        runtime that exited mid-invocation; without this a killed function held its batch for the whole timeout)."""
        invocation = Invocation(str(uuid.uuid4()), json.dumps(event).encode(),
                                int((time.time() + timeout_s) * 1000))
        with self._cond:
            self._work = invocation
            self._cond.notify_all()
        deadline = time.monotonic() + timeout_s
        while not invocation.done.wait(min(0.5, max(deadline - time.monotonic(), 0.0))):
            if time.monotonic() >= deadline:
                break
            if not alive():
                with self._cond:
                    if self._work is invocation:
                        self._work = None
                self.in_flight.pop(invocation.request_id, None)
                if not invocation.done.is_set():
                    invocation.outcome = "error"
                    invocation.result = b'{"errorType":"Runtime.ExitError","errorMessage":"runtime exited"}'
                    return invocation
        if not invocation.done.is_set():
            # Not picked up or not answered in time: withdraw it so a new environment does not get it.
            with self._cond:
                if self._work is invocation:
                    self._work = None
            self.in_flight.pop(invocation.request_id, None)
        return invocation

    def close(self) -> None:
        self.server.shutdown()


class FunctionProcess:
    """The execution environment: `python -m awslambdaric <handler>`, replaced when it dies or times out."""

    def __init__(self, handler: str, api_port: int, env: dict[str, str], log_path: Path) -> None:
        self.handler, self.api_port, self.env, self.log_path = handler, api_port, env, log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def ensure_running(self) -> bool:
        """Start a new execution environment unless one is running; True when one was started."""
        if self.proc is not None and self.proc.poll() is None:
            return False
        if self.proc is not None:
            log.warning("function process exited with %s; starting a new execution environment", self.proc.returncode)
        env = {**self.env, "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self.api_port}",
               "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME, "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
               "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "2048", "LAMBDA_DISABLE_PREVIEW_WARN": "1",
               # Tesseract's OpenMP threads fight each other on Lambda's few vCPUs: one thread is faster.
               "OMP_THREAD_LIMIT": "1"}
        with self.log_path.open("ab") as sink:
            self.proc = subprocess.Popen([sys.executable, "-m", "awslambdaric", self.handler], env=env,
                                         stdout=sink, stderr=subprocess.STDOUT)
        self.starts += 1
        return True

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event an SQS event source mapping passes to a function (the fields AWS sets, same names)."""
    return {"Records": [{
        "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
        "attributes": m.get("Attributes", {}), "messageAttributes": m.get("MessageAttributes", {}),
        "md5OfBody": m.get("MD5OfBody", ""), "eventSource": "aws:sqs", "eventSourceARN": queue_arn,
        "awsRegion": region,
    } for m in messages]}


def messages_to_delete(messages: list[dict[str, Any]], invocation: Invocation) -> list[dict[str, Any]]:
    """Which received messages an invocation finished (ReportBatchItemFailures semantics)."""
    if invocation.outcome != "response":
        return []  # error or timeout: the whole batch comes back after the visibility timeout
    try:
        response = json.loads(invocation.result or b"null")
    except json.JSONDecodeError:
        return []
    failures = response.get("batchItemFailures") if isinstance(response, dict) else None
    if failures is None:
        return messages
    failed = {f.get("itemIdentifier") for f in failures if isinstance(f, dict)}
    if "" in failed or None in failed:
        return []  # AWS treats an empty/missing identifier as a failure of the whole batch
    return [m for m in messages if m["MessageId"] not in failed]


def run(handler: str) -> None:
    from claims_shared.clients.aws import sqs_client
    from claims_shared.settings import get_settings

    settings = get_settings()
    home = settings.state_dir / "lambda"
    home.mkdir(parents=True, exist_ok=True)
    status_path = home / "status.json"
    sqs = sqs_client(settings)
    queue_url = sqs.get_queue_url(QueueName=settings.landing_queue)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    api = RuntimeApi(settings.lambda_runtime_port,
                     f"arn:aws:lambda:{settings.s3_region}:000000000000:function:{FUNCTION_NAME}")
    function = FunctionProcess(handler, settings.lambda_runtime_port, {**os.environ, **settings.as_env()},
                               settings.state_dir / "logs" / "document-lambda-function.log")
    counters = {"invocations": 0, "messages": 0, "deleted": 0, "errors": 0, "timeouts": 0, "restarts": 0}
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def write_status() -> None:
        tmp = status_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({**counters, "function_starts": function.starts, "init_errors": api.init_errors,
                                   "queue": settings.landing_queue, "updated_at": time.time()}))
        tmp.replace(status_path)

    def ensure_function() -> None:
        if function.proc is None or function.proc.poll() is not None:
            api.new_generation()
            function.ensure_running()

    ensure_function()
    write_status()
    try:
        while not stop.is_set():
            ensure_function()
            try:
                received = sqs.receive_message(
                    QueueUrl=queue_url, MaxNumberOfMessages=settings.lambda_batch_size, WaitTimeSeconds=1,
                    VisibilityTimeout=settings.lambda_visibility_timeout_s, AttributeNames=["All"],
                    MessageAttributeNames=["All"]).get("Messages", [])
            except Exception as exc:  # noqa: BLE001 - the queue being away is retried, as the real poller does
                log.warning("receive from %s failed, retrying: %s", settings.landing_queue, exc)
                stop.wait(2.0)
                continue
            if not received:
                write_status()
                continue
            counters["invocations"] += 1
            counters["messages"] += len(received)
            invocation = api.invoke(sqs_event(received, queue_arn, settings.s3_region), settings.lambda_timeout_s,
                                    alive=lambda: function.proc is not None and function.proc.poll() is None)
            if not invocation.outcome:
                counters["timeouts"] += 1
                log.error("invocation %s timed out after %ss: replacing the execution environment",
                          invocation.request_id, settings.lambda_timeout_s)
                function.kill()
                counters["restarts"] += 1
            elif invocation.outcome == "error":
                counters["errors"] += 1
                log.error("invocation %s failed: %s", invocation.request_id, invocation.result[:2000])
            done = messages_to_delete(received, invocation)
            for start in range(0, len(done), 10):
                chunk = done[start:start + 10]
                sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)])
            counters["deleted"] += len(done)
            write_status()
    finally:
        function.kill()
        api.close()
        write_status()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--handler", default="lambdas.document_lambda.handler.handler",
                        help="module.function of the Lambda handler")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    run(args.handler)


if __name__ == "__main__":
    main()


class EmbeddedLambda:
    """Embedded-stack component: this module as a process (event source mapping + Runtime API + the function)."""

    def __init__(self, settings: Any) -> None:
        from claimsctl.stack.process import ManagedProcess

        self.settings = settings
        self.status_path = settings.state_dir / "lambda" / "status.json"
        self.proc = ManagedProcess("document-lambda", settings.state_dir / "run", settings.state_dir / "logs",
                                   port=settings.lambda_runtime_port)

    def start(self) -> None:
        from claims_shared.settings import PROJECT_ROOT

        if self.proc.is_running():
            return
        self.status_path.unlink(missing_ok=True)
        self.proc.start([sys.executable, "-m", "claimsctl.stack.lambda_runtime"], env=self.settings.as_env(),
                        cwd=PROJECT_ROOT, ready=self.status_path.exists, timeout_s=30)

    def stop(self) -> bool:
        # The runtime host finishes its current invocation's bookkeeping on SIGTERM; an object in flight is
        # redelivered after the visibility timeout and processed again with the same document id.
        return self.proc.stop(timeout_s=15)

    def counters(self) -> dict[str, Any]:
        try:
            return json.loads(self.status_path.read_text())
        except (OSError, ValueError):
            return {}
