"""`claimsctl dashboard`: the Metabase questions rendered offline into one HTML page, checked in headless Chromium
(screenshot taken, no console message, the page's script ran, nothing fetched from the network)."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from claimsctl.cli import main
from claimsctl.dashboards import DashboardDefinitionError, load_dashboards

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium missing: run `make system-deps`")


def chromium(page: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--enable-logging=stderr",
         "--log-level=0", *args, page.as_uri()],
        capture_output=True, text=True, timeout=120, cwd=page.parent)


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.fixture(scope="module")
def page(sample_lake, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dashboard") / "dashboard.html"
    result = CliRunner().invoke(main, ["dashboard", "--lake", sample_lake.root, "--output", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_page_has_every_question_with_its_sql_and_no_network_reference(page: Path) -> None:
    text = page.read_text()
    for dashboard in load_dashboards():
        assert f"<h2>{dashboard.name}</h2>" in text
        for question in dashboard.questions:
            assert f'data-question="{question.name}"' in text.replace("&#x27;", "'")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), "the page must not load anything"
    assert text.count("<svg") == sum(q.display in ("bar", "line") for d in load_dashboards() for q in d.questions)


def test_page_shows_the_sample_facts(page: Path) -> None:
    text = page.read_text()
    assert "CLM-2026-0000001" in text and "loss_soon_after_inception" in text and "crash" in text


@needs_chromium
def test_console_check_catches_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>console.error('boom'); missing();</script></body></html>")
    messages = console_messages(chromium(bad, f"--screenshot={tmp_path / 'bad.png'}").stderr)
    assert any("boom" in m for m in messages) and any("missing is not defined" in m for m in messages)


@needs_chromium
def test_page_renders_in_headless_chromium_without_console_errors(page: Path) -> None:
    shot = page.parent / "dashboard.png"
    result = chromium(page, f"--screenshot={shot}", "--window-size=1280,2400")
    assert console_messages(result.stderr) == []
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    assert (width, height) == (1280, 2400)
    assert shot.stat().st_size > 30_000  # charts drawn, not a blank page
    dom = chromium(page, "--dump-dom").stdout
    assert 'data-ready="true"' in dom  # the page's script ran to the end


def test_a_chart_without_columns_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"name": "x", "questions": [{"name": "q", "display": "bar", "sql": "SELECT 1"}]}')
    with pytest.raises(DashboardDefinitionError, match="needs x and y"):
        load_dashboards(tmp_path)
