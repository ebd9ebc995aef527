#!/usr/bin/env bash
# Install what citygrid needs on Debian: PostgreSQL + PostGIS and GDAL from Debian's packages
# (only when missing), then a virtualenv with the project and its dev tools.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

pg_major() { ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -n 1; }

missing=()
[ -n "$(pg_major)" ] || missing+=(postgresql)
command -v ogrinfo >/dev/null || missing+=(gdal-bin)
python3 -c "import venv, ensurepip" 2>/dev/null || missing+=(python3-venv)
command -v chromium >/dev/null || missing+=(chromium)  # the dispatcher page's browser test
[ -n "$(fc-list :lang=zh 2>/dev/null)" ] || missing+=(fonts-wqy-zenhei)  # Chinese in screenshots
# the daily set: WeasyPrint renders PDFs with pango; the tests read them back with pdftotext
ldconfig -p 2>/dev/null | grep -q libpango-1.0 || missing+=(libpango-1.0-0 libpangoft2-1.0-0)
command -v pdftotext >/dev/null || missing+=(poppler-utils)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
major="$(pg_major)"
# `citygrid backup` / `restore` run this major's pg_dump and pg_restore
if [ ! -x "/usr/lib/postgresql/${major}/bin/pg_restore" ]; then
  echo "installing the PostgreSQL ${major} client programs"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "postgresql-client-${major}"
fi
if [ ! -f "/usr/share/postgresql/${major}/extension/postgis.control" ]; then
  echo "installing PostGIS for PostgreSQL ${major}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "postgresql-${major}-postgis-3"
fi

# The Citus tests (pytest -m citus) build Citus from the shared vendor folder's source tarball
# against this PostgreSQL (tests/helpers/citus.py); its build needs the server headers.
citus_vendor="${CITYGRID_CITUS_VENDOR:-../shared/vendor}"
[ -f "$citus_vendor/citus-13.2.2.tar.gz" ] || citus_vendor=/work/shared/vendor
if [ -f "$citus_vendor/citus-13.2.2.tar.gz" ] && [ "$major" = "15" ] \
  && [ ! -f "/usr/lib/postgresql/15/lib/citus.so" ]; then
  echo "installing what building Citus needs (the Citus tests)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq build-essential \
    postgresql-server-dev-15 libcurl4-openssl-dev liblz4-dev libzstd-dev libkrb5-dev \
    libselinux1-dev libxslt1-dev libpam0g-dev libreadline-dev
fi

VENV="${VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e ".[dev]"
