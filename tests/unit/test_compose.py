"""docker-compose.yml stays consistent with the repository, without a Docker engine.

Checks what `docker compose up` would only find out late: Dockerfiles, bind mounts and env files that do not
exist, CLAIMS_* variable names that PlatformSettings does not know, services depending on missing or
healthcheck-less services, and image tags that are absent or floating.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from claims_shared.settings import EMBEDDED_ONLY_FIELDS, PlatformSettings

yaml = pytest.importorskip("yaml")

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"

# Read by the Kafka Connect worker for ${env:...} in infra/debezium/claims-postgres-connector.json.
CONNECTOR_ENV_NAMES = {
    "CLAIMS_PG_HOST",
    "CLAIMS_PG_PORT",
    "CLAIMS_PG_DB",
    "CLAIMS_PG_CDC_USER",
    "CLAIMS_PG_CDC_PASSWORD",
    "CLAIMS_TOPIC_PREFIX",
    "CLAIMS_KAFKA_BOOTSTRAP",
}
SETTINGS_ENV_NAMES = {f"CLAIMS_{name.upper()}" for name in PlatformSettings.model_fields}
KNOWN_CLAIMS_NAMES = SETTINGS_ENV_NAMES | CONNECTOR_ENV_NAMES

CLAIMS_NAME = re.compile(r"\bCLAIMS_[A-Z0-9_]+\b")
# Compose interpolation: ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?err}; `$$` is a literal dollar.
INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _environment(service: dict[str, Any]) -> dict[str, Any]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return env


def _bind_sources(service: dict[str, Any]) -> list[str]:
    sources = []
    for volume in service.get("volumes") or []:
        source = volume.get("source") if isinstance(volume, dict) else volume.split(":", 1)[0]
        if isinstance(volume, dict) and volume.get("type") != "bind":
            continue
        if source.startswith((".", "/", "~")):
            sources.append(source)
    return sources


def test_compose_file_parses_with_services(services: dict[str, dict[str, Any]]) -> None:
    expected = {
        "postgres", "kafka", "schema-registry", "connect", "connect-init", "minio", "elasticmq",
        "storage-init", "spark-master", "spark-worker", "hive-metastore", "trino", "metabase", "jupyter-lab",
        "cdc-normalizer", "telematics-scorer", "object-ingestor", "delta-compactor", "lambda-runtime",
    }
    assert expected <= services.keys(), f"missing services: {sorted(expected - services.keys())}"


def test_every_build_context_and_dockerfile_exists(services: dict[str, dict[str, Any]]) -> None:
    built = {name: svc["build"] for name, svc in services.items() if "build" in svc}
    assert built, "no service is built from this repository"
    for name, build in built.items():
        if isinstance(build, str):
            build = {"context": build}
        context = (REPO / build.get("context", ".")).resolve()
        assert context.is_dir(), f"{name}: build context {context} does not exist"
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), f"{name}: {dockerfile.relative_to(REPO)} does not exist"


def test_every_bind_mount_and_env_file_exists(services: dict[str, dict[str, Any]]) -> None:
    missing = []
    for name, svc in services.items():
        for source in _bind_sources(svc):
            if not (REPO / source).exists():
                missing.append(f"{name}: bind mount {source}")
        env_files = svc.get("env_file") or []
        for env_file in [env_files] if isinstance(env_files, str) else env_files:
            path = env_file["path"] if isinstance(env_file, dict) else env_file
            required = env_file.get("required", True) if isinstance(env_file, dict) else True
            if required and not (REPO / path).exists():
                missing.append(f"{name}: env_file {path}")
    assert not missing, "compose references paths that are not in the repository:\n" + "\n".join(missing)


def test_claims_variable_names_are_settings_fields(services: dict[str, dict[str, Any]]) -> None:
    text = COMPOSE_FILE.read_text()
    used = set(CLAIMS_NAME.findall(text))
    for svc in services.values():
        used |= {key for key in _environment(svc) if key.startswith("CLAIMS_")}
    unknown = used - KNOWN_CLAIMS_NAMES
    assert not unknown, (
        f"{sorted(unknown)} are not PlatformSettings fields (claims_shared/settings.py) nor connector env names; "
        "rename them or add the field"
    )


def test_trino_catalogs_use_settings_variable_names() -> None:
    catalog_dir = REPO / "infra" / "trino" / "etc" / "catalog"
    used = set()
    for path in catalog_dir.iterdir():
        used |= set(re.findall(r"\$\{ENV:(CLAIMS_[A-Z0-9_]+)\}", path.read_text()))
    assert used, "the Trino catalogs read no CLAIMS_* variable"
    assert used <= SETTINGS_ENV_NAMES, f"unknown in Trino catalogs: {sorted(used - SETTINGS_ENV_NAMES)}"


def test_deployables_get_every_shared_setting(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    shared = set(compose["x-claims-env"])
    embedded_only = {f"CLAIMS_{name.upper()}" for name in EMBEDDED_ONLY_FIELDS}
    assert SETTINGS_ENV_NAMES - embedded_only <= shared
    for name, svc in services.items():
        if "build" in svc:
            missing = shared - set(_environment(svc))
            assert not missing, f"{name} lacks {sorted(missing)}: use `<<: *claims-env`"


def test_connect_worker_has_connector_env_and_config_provider(services: dict[str, dict[str, Any]]) -> None:
    env = _environment(services["connect"])
    assert CONNECTOR_ENV_NAMES <= env.keys()
    assert env["CONNECT_CONFIG_PROVIDERS"] == "env"
    assert env["CONNECT_CONFIG_PROVIDERS_ENV_CLASS"] == "org.apache.kafka.common.config.provider.EnvVarConfigProvider"


def test_connect_init_registers_the_repository_connector(services: dict[str, dict[str, Any]]) -> None:
    init = services["connect-init"]
    command = " ".join(init.get("entrypoint", []) + (init.get("command") or []))
    assert "register-connector.sh" in command and "claims-postgres-connector.json" in command
    assert (REPO / "infra" / "debezium" / "register-connector.sh").is_file()
    assert (REPO / "infra" / "debezium" / "claims-postgres-connector.json").is_file()


def test_depends_on_targets_exist_and_health_conditions_have_healthchecks(
    services: dict[str, dict[str, Any]],
) -> None:
    problems = []
    for name, svc in services.items():
        depends = svc.get("depends_on") or {}
        if isinstance(depends, list):
            depends = {target: {"condition": "service_started"} for target in depends}
        for target, spec in depends.items():
            if target not in services:
                problems.append(f"{name} depends on unknown service {target}")
            elif spec.get("condition") == "service_healthy" and "healthcheck" not in services[target]:
                problems.append(f"{name} waits for {target} to be healthy, but {target} has no healthcheck")
            elif spec.get("condition") == "service_completed_successfully" and services[target].get("restart") not in (
                None,
                "no",
            ):
                problems.append(f"{name} waits for one-shot {target} to complete, but {target} restarts")
    assert not problems, "\n".join(problems)


def _assert_pinned(image: str, where: str) -> None:
    reference = image.split("@", 1)[0]
    name, _, tag = reference.rpartition(":")
    # A colon inside the registry part (host:port/...) is not a tag.
    if not name or "/" in tag:
        tag = ""
    assert tag or "@sha256:" in image, f"{where}: image {image} has no tag"
    assert tag != "latest", f"{where}: image {image} uses :latest"
    assert "$" not in image, f"{where}: image {image} is not a literal"


def test_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        if "image" in svc:
            _assert_pinned(svc["image"], f"service {name}")
        else:
            assert "build" in svc, f"service {name} has neither image nor build"


def test_dockerfile_base_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        if "build" not in svc:
            continue
        dockerfile = REPO / svc["build"].get("context", ".") / svc["build"]["dockerfile"]
        text = dockerfile.read_text()
        args = dict(re.findall(r"^ARG\s+([A-Za-z_][A-Za-z0-9_]*)=(\S+)", text, re.MULTILINE))
        stages = set(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", text, re.MULTILINE | re.IGNORECASE))
        for base in re.findall(r"^FROM\s+(?:--platform=\S+\s+)?(\S+)", text, re.MULTILINE):
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), base)
            if base not in stages:
                _assert_pinned(base, f"{dockerfile.relative_to(REPO)}")


def test_dockerfiles_install_the_project_with_constraints(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        if "build" in svc:
            text = (REPO / svc["build"].get("context", ".") / svc["build"]["dockerfile"]).read_text()
            installs = [args.split() for args in re.findall(r"pip install ([^&\\\n]+)", text)]
            assert any(args[-1].startswith(".") for args in installs), \
                f"{name}: Dockerfile does not install the project"
            # Whatever pip resolves is pinned; only a --no-deps install (the project itself) goes without constraints.
            unpinned = [" ".join(args) for args in installs
                        if "constraints.txt" not in args and "--no-deps" not in args]
            assert not unpinned, f"{name}: pip install without -c constraints.txt: {unpinned}"


def test_compose_interpolations_have_defaults() -> None:
    # `docker compose up` without a .env file must work: every ${VAR} carries a development default.
    text = COMPOSE_FILE.read_text()
    bare = [m.group(0) for m in re.finditer(r"(?<!\$)\$\{[A-Za-z_][A-Za-z0-9_]*\}", text)]
    assert not bare, f"interpolations without a default: {bare}"
    assert INTERPOLATION.findall(text), "expected secrets to be interpolated from the environment"
