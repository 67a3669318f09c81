#!/usr/bin/env bash
# Set up reportgen on a fresh Debian machine with Python >= 3.11 and pip.
#   bash scripts/setup.sh          the tool: system libraries for WeasyPrint, then the package
#   bash scripts/setup.sh --test   also what the tests need (pytest, pypdf, hypothesis, ...)
# Idempotent: on a machine that has everything it installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

# WeasyPrint renders through Pango; DejaVu is the font the report is set in (no web fonts).
apt_packages=(libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b fonts-dejavu-core)
if (( want_test )); then
    # poppler-utils: PDF pages to PNG for the visual review script. shellcheck: actionlint runs
    # it on the example workflow's run: steps (tests/test_examples.py, .ci/run).
    apt_packages+=(poppler-utils shellcheck)
fi
if [[ -n "${REPORTGEN_EXTRA_APT:-}" ]]; then
    read -r -a extra <<<"$REPORTGEN_EXTRA_APT"
    apt_packages+=("${extra[@]}")
fi

missing=()
for pkg in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if (( ${#missing[@]} )); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "setup: missing Debian packages: ${missing[*]} (run as root or install them)" >&2
        exit 1
    fi
    echo "setup: installing ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

target="."
(( want_test )) && target=".[dev]"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -e "$target"
# Byte-compile reportgen as pip does for a regular install (an editable one skips it), so no run
# compiles it again where PYTHONDONTWRITEBYTECODE is set.
python3 -m compileall -q reportgen >/dev/null || true
command -v pyenv >/dev/null 2>&1 && pyenv rehash || true

# Build the Vega JavaScript bundle the HTML report inlines (~1 s, the same for every run of
# this vl-convert version) into reportgen's cache now, so the first report is as fast as the
# next ones. Not fatal: a run builds it itself when the cache is missing or unwritable.
python3 -c "from reportgen.render import vega; vega.vega_bundle()" \
    || echo "setup: could not prepare the Vega bundle cache (a run will build it)" >&2
