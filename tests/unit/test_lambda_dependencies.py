"""The document Lambda's container image installs only pyproject.toml's `lambda` extra (lambdas/Dockerfile): the
handler, run in a child interpreter that can import nothing else, must process real documents and load no
distribution outside that list and what it requires."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from PIL import Image, ImageDraw

from tests import document_samples as samples

REPO = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("lambda_import_probe.py")
# The first-party packages lambdas/Dockerfile copies into the image.
IMAGE_PACKAGES = ["lambdas", "claims_shared"]


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def lambda_requirements() -> list[Requirement]:
    return [Requirement(r) for r in _pyproject()["project"]["optional-dependencies"]["lambda"]]


def installed_closure(requirements: list[Requirement]) -> set[str]:
    """Normalized names of `requirements` and everything they require (per the installed metadata, extras and
    markers applied): what `pip install` of them brings."""
    found: set[str] = set()
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = list(requirements)
    while todo:
        req = todo.pop()
        name, extras = canonicalize_name(req.name), frozenset(req.extras)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        found.add(name)
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:
            continue  # not installed here, so the child cannot load it either
        for spec in requires:
            sub = Requirement(spec)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in extras or {""}):
                todo.append(sub)
    return found


def _scan_png() -> bytes:
    img = Image.new("L", (640, 120), 255)
    ImageDraw.Draw(img).text((10, 40), "Claim CLM-2026-0000001 amount 12.50", fill=0)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def test_document_lambda_loads_only_the_lambda_extra(tmp_path: Path) -> None:
    # Made here, not in the child: their generators (fpdf, the simulator) are no part of the Lambda.
    objects = {"incoming/form.png": _scan_png(),
               "incoming/form.pdf": samples.text_pdf([["Claim number CLM-2026-0000001", "Total 12.50"]]),
               "incoming/photo.jpg": samples.photo(1),
               "incoming/notes.txt": b"Adjuster notes: call back on Monday.\n",
               "incoming/broken.png": _scan_png()[:200]}
    paths = {}
    for key, body in objects.items():
        paths[key] = str(tmp_path / key.rpartition("/")[2])
        Path(paths[key]).write_bytes(body)
    allowed = installed_closure(lambda_requirements())
    first_party = [p.rstrip("*") for p in _pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]]
    request = {"repo": str(REPO), "distributions": sorted(allowed), "packages": IMAGE_PACKAGES,
               "first_party": first_party, "objects": paths}

    child = subprocess.run([sys.executable, str(PROBE)], input=json.dumps(request), capture_output=True,
                           text=True, timeout=120, cwd=tmp_path, check=False)

    assert child.returncode == 0, (
        "the handler failed with only the `lambda` extra importable; if it now imports a new package, add its "
        f"distribution to [project.optional-dependencies] lambda in pyproject.toml:\n{child.stderr[-3000:]}")
    report = json.loads(child.stdout.splitlines()[-1])
    # Every code path ran: OCR, PDF text layer, photo EXIF, plain text, quarantine, an object already gone.
    assert report["records"] == {"incoming/form.png": "ok", "incoming/form.pdf": "ok", "incoming/photo.jpg": "ok",
                                 "incoming/notes.txt": "ok", "incoming/broken.png": "quarantined"}
    assert report["outcomes"] == {"ok": 4, "quarantined": 1, "gone": 1}
    outside = {d: tops for d, tops in report["loaded"].items() if d not in allowed}
    assert not outside, f"the Lambda loaded distributions missing from pyproject.toml's `lambda` extra: {outside}"
    assert report["first_party_loaded"] == sorted(IMAGE_PACKAGES)


def test_lambda_extra_is_pinned_by_constraints() -> None:
    pinned = {canonicalize_name(line.partition("==")[0]) for line in (REPO / "constraints.txt").read_text().splitlines()
              if "==" in line and not line.startswith("#")}
    unpinned = installed_closure(lambda_requirements()) - pinned
    assert not unpinned, f"the Lambda image would install these unpinned (add them to constraints.txt): {unpinned}"
