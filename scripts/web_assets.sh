#!/usr/bin/env bash
# Installs the pages' front-end libraries from npm (package-lock.json) and copies the files the
# pages load into static/vendor/ (git-ignored), so nothing comes from a CDN at run time.
# Idempotent: does nothing when static/vendor/ is newer than package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."
VENDOR=static/vendor
STAMP=$VENDOR/.installed
if [[ -f $STAMP && $STAMP -nt package-lock.json && $STAMP -nt package.json ]]; then
  exit 0
fi
command -v npm >/dev/null || { echo "npm not found: install Node.js with npm first." >&2; exit 1; }
npm ci --no-audit --no-fund --loglevel=error
mkdir -p "$VENDOR"
cp node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.mjs \
   "$VENDOR/lightweight-charts.mjs"
cp node_modules/uplot/dist/uPlot.esm.js "$VENDOR/uPlot.esm.js"
cp node_modules/uplot/dist/uPlot.min.css "$VENDOR/uPlot.min.css"
touch "$STAMP"
echo "Front-end libraries copied into $VENDOR/."
