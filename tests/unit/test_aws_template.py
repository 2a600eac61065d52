"""infra/aws/template.yaml: the deployable wiring of the object stream, checked statically (no AWS here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from claims_shared.settings import PROJECT_ROOT, PlatformSettings

TEMPLATE = PROJECT_ROOT / "infra" / "aws" / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that keeps CloudFormation short-form tags (!Ref, !Sub, !GetAtt ...) as plain values."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node)}
    return {suffix: loader.construct_mapping(node)}


_CfnLoader.add_multi_constructor("!", _tag)


def template() -> dict[str, Any]:
    return yaml.load(Path(TEMPLATE).read_text(), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


def test_only_incoming_objects_notify_the_queue() -> None:
    bucket = template()["Resources"]["LandingBucket"]["Properties"]
    (config,) = bucket["NotificationConfiguration"]["QueueConfigurations"]
    assert config["Event"] == "s3:ObjectCreated:*"
    assert config["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": PlatformSettings().landing_incoming_prefix}]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}


def test_function_reports_partial_batch_failures_and_failing_messages_end_in_a_dead_letter_queue() -> None:
    t = template()
    events = t["Resources"]["DocumentFunction"]["Properties"]["Events"]["LandingNotifications"]["Properties"]
    assert events["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert events["BatchSize"] == PlatformSettings().lambda_batch_size
    queue = t["Resources"]["LandingQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"GetAtt": "LandingDeadLetterQueue.Arn"}
    params = t["Parameters"]
    assert params["QueueVisibilityTimeoutSeconds"]["Default"] >= 6 * params["FunctionTimeoutSeconds"]["Default"]
    assert params["FunctionTimeoutSeconds"]["Default"] == PlatformSettings().lambda_timeout_s


def test_function_may_read_incoming_and_write_only_sidecars_and_quarantine() -> None:
    (policy,) = template()["Resources"]["DocumentFunction"]["Properties"]["Policies"]
    grants = {(tuple(s["Action"]), str(s["Resource"])) for s in policy["Statement"]}
    assert all(s["Effect"] == "Allow" and "*" not in "".join(s["Action"]) for s in policy["Statement"])
    resources = " ".join(r for _, r in grants)
    assert "/incoming/*" in resources and "/processed/*" in resources and "/quarantine/*" in resources
    read = next(s for s in policy["Statement"] if "s3:GetObject" in s["Action"])
    assert "s3:PutObject" not in read["Action"] and read["Resource"]["Sub"].endswith("/incoming/*")


def test_function_environment_names_are_settings_the_code_reads() -> None:
    env = template()["Resources"]["DocumentFunction"]["Properties"]["Environment"]["Variables"]
    known = {f"CLAIMS_{name.upper()}" for name in PlatformSettings.model_fields}
    assert {k for k in env if k.startswith("CLAIMS_")} <= known
    assert env["OMP_THREAD_LIMIT"] == "1"
