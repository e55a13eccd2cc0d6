#!/usr/bin/env bash
# The browser client's third-party modules (docs/web.md "Third-party modules"): installs the
# versions pinned in gateway/web-vendor/package-lock.json with `npm ci` and copies the files
# the browser loads into gateway/web/vendor/ (git-ignored), which the gateway serves as
# /vendor/... under its CSP (script-src 'self'). `make all` runs it when the lock file is
# newer than the copy; without node and npm (NCC_DEPS_NO_BROWSER=1) it only warns: the
# client then shows its tables without charts.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
src=$top/gateway/web-vendor
dest=$top/gateway/web/vendor

# package path in node_modules -> file name under gateway/web/vendor/
files=(
    uplot/dist/uPlot.esm.js:uPlot.esm.js
    uplot/dist/uPlot.min.css:uPlot.min.css
    uplot/LICENSE:uPlot.LICENSE.txt
)

if ! command -v npm >/dev/null 2>&1; then
    echo "web-vendor.sh: npm is missing: the chart library is not installed (scripts/deps.sh installs npm)" >&2
    exit 0
fi
(cd "$src" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

# Copied into a fresh folder, then swapped in whole: the gateway never serves half a copy.
tmp=$(mktemp -d "$top/gateway/web/.vendor.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for entry in "${files[@]}"; do
    cp "$src/node_modules/${entry%%:*}" "$tmp/${entry##*:}"
done
chmod 755 "$tmp"
chmod 644 "$tmp"/*
rm -rf "$dest.old"
[ -d "$dest" ] && mv "$dest" "$dest.old"
mv "$tmp" "$dest"
rm -rf "$dest.old"
# The marker make looks at stays out of the web root (every file there is served).
touch "$src/node_modules/.ncc-installed"
echo "web-vendor.sh: gateway/web/vendor/ holds ${#files[@]} files"
