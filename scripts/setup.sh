#!/usr/bin/env bash
# Installs what pixelpilot needs on a fresh Debian/Ubuntu machine: the X tools its desktop
# device drives (Xvfb, xdotool, ...), the openbox window manager its virtual displays run, a CJK
# font (so screenshots show 東京), the adb client its Android device talks through, Chromium and
# its driver (the MiniWoB++ bench), mousepad and xterm for the tests (--test only), and the
# package itself (editable); --test adds the test tools (ray for the Ray backend's tests, trl and peft for
# pixelpilot train's, among them).
#   bash scripts/setup.sh          # runtime
#   bash scripts/setup.sh --test   # runtime + test dependencies
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(xvfb xauth xdotool xclip x11-utils python3-tk openbox fonts-wqy-microhei adb chromium chromium-driver)
# the real-app scenarios (scenarios/apps): a GTK editor, a terminal
[ "${1:-}" = "--test" ] && PKGS+=(mousepad xterm)
missing=()
for p in "${PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
"$PY" -c 'import sys, tkinter; assert sys.version_info >= (3, 11)' 2>/dev/null || {
  echo "pixelpilot needs Python >= 3.11 with tkinter (set PYTHON=...)" >&2; exit 1; }
extra=""; [ "${1:-}" = "--test" ] && extra="[test]"
"$PY" -m pip install -q --disable-pip-version-check -e ".${extra}" 2>&1 | grep -v "^WARNING: Running pip as" || true
command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
