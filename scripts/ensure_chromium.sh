#!/usr/bin/env bash
# The browser tests drive the Chromium of the system packages (Playwright's own browser download
# does not work offline). Installs Debian's chromium when /usr/bin/chromium is missing.
set -euo pipefail
if [[ -x /usr/bin/chromium ]]; then
  exit 0
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "Install chromium (apt-get install chromium) as root." >&2; exit 1; }
  SUDO=sudo
fi
echo "Installing chromium from the system packages for the browser tests..."
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
