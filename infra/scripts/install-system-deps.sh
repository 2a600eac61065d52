#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages the embedded stack needs, only those that are missing.
# PostgreSQL server (CDC source), a JDK (Kafka Connect + Debezium), tesseract and poppler (OCR), DejaVu fonts,
# Chromium (the headless check of `claimsctl dashboard`'s HTML page).
set -euo pipefail

missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v javac >/dev/null 2>&1 || missing+=(openjdk-17-jdk-headless)
command -v tesseract >/dev/null 2>&1 || missing+=(tesseract-ocr tesseract-ocr-eng)
command -v pdftoppm >/dev/null 2>&1 || missing+=(poppler-utils)
# The fonts the simulator and the document tests draw claim forms with.
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf ] || missing+=(fonts-dejavu-core)
command -v runuser >/dev/null 2>&1 || missing+=(util-linux)
# Headless browser for the dashboard page test (tests/unit/test_dashboard_html.py).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# Debian's python3 ships without venv/ensurepip; `make install` creates .venv with it.
python3 -c "import ensurepip, venv" >/dev/null 2>&1 || missing+=(python3-venv)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing system packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
    echo "error: need root or sudo to install: ${missing[*]} (or install them yourself and re-run)" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian postgresql package starts a system cluster on 5432; the platform runs its own cluster and
# does not need it.
if [[ " ${missing[*]} " == *" postgresql "* ]] && command -v pg_ctlcluster >/dev/null 2>&1; then
  $SUDO service postgresql stop >/dev/null 2>&1 || true
fi
