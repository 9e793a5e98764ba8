#!/usr/bin/env bash
# Fetch the JavaScript the built book needs, so the HTML works with no internet:
#   * MathJax 3 (with its fonts and lazily loaded TeX extensions),
#   * RequireJS and the Jupyter widgets HTML manager (embed-amd.js and the
#     Font Awesome files it loads), used on pages that embed ipywidgets,
#   * Font Awesome 4 (CSS and fonts), which matplotlib's JavaScript animations
#     (Animation.to_jshtml) link from a CDN; the build points them here;
#   * Noto Sans SC (Fontsource's split web font, regular weight only), so that the
#     glossary's Chinese column renders on a machine without a CJK font. Its CSS
#     declares each slice with a unicode-range: a page loads only the slices of
#     the characters it shows (pages without Chinese load none).
# They come from the npm registry at exact versions, are checked against the
# registry's sha512 integrity, and are unpacked into book/_static/vendor/
# (git-ignored). Sphinx copies them to _build/html/_static/vendor/.
#
# Idempotent: does nothing when the pinned versions are already in place.
# Set LVAE_VENDOR_FORCE=1 to fetch again.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

DEST="book/_static/vendor"

# name | version | sha512 integrity (from `npm view NAME@VERSION dist.integrity`) | target dir | paths to keep
PACKAGES=(
  "mathjax|3.2.2|sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw==|mathjax|es5 LICENSE"
  "requirejs|2.3.8|sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+Jd5otXKGNehIonFlyQXSowL6Mw==|requirejs|require.js README.md"
  "@jupyter-widgets/html-manager|1.0.15|sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvFi//SABeNz1yp47bCrJ3CQA==|html-manager|dist package.json"
  "font-awesome|4.7.0|sha512-U6kGnykA/6bFmg1M/oT9EkFeIYv7JlX3bozwQJWiiLz6L0w3F5vBVPxHlwyX/vtNq1ckcpRKOB9f2Qal/VtFpg==|font-awesome|css fonts README.md"
  "@fontsource/noto-sans-sc|5.3.0|sha512-HeqIlGm0+ohOKxZLuHj1qW6r6avHH0OWdKERAcSDI0RQ+MXrteuLKA+M+5eOA8rYy0MFvOR5AT0fQo2rUkye0Q==|noto-sans-sc|400.css files LICENSE"
)

STAMP="$DEST/VERSIONS"
want_stamp() {
  local entry name version rest
  for entry in "${PACKAGES[@]}"; do
    IFS='|' read -r name version rest <<<"$entry"
    echo "$name@$version"
  done
}

if [[ "${LVAE_VENDOR_FORCE:-0}" != "1" && -f "$STAMP" ]] \
   && [[ "$(cat "$STAMP")" == "$(want_stamp)" ]] \
   && [[ -f "$DEST/mathjax/es5/tex-chtml.js" && -f "$DEST/requirejs/require.js" \
         && -f "$DEST/html-manager/dist/embed-amd.js" \
         && -f "$DEST/font-awesome/css/font-awesome.min.css" \
         && -f "$DEST/noto-sans-sc/400.css" ]]; then
  echo "fetch_vendor: vendored assets are up to date ($(tr '\n' ' ' <"$STAMP"))"
  exit 0
fi

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

TARBALL=""
fetch_tarball() {  # name version -> sets TARBALL to the path of the .tgz
  local name="$1" version="$2" scoped
  scoped="${name#@}"; scoped="${scoped//\//-}"   # @scope/pkg -> scope-pkg (npm pack's name)
  TARBALL="$TMP/${scoped}-${version}.tgz"
  if command -v npm >/dev/null 2>&1; then
    (cd "$TMP" && npm pack --silent --loglevel=error "$name@$version" >/dev/null)
  else
    # No npm client: download the same tarball from the npm registry.
    python3 - "$name" "$version" "$TARBALL" <<'PY'
import sys, urllib.request
name, version, out = sys.argv[1:]
url = f"https://registry.npmjs.org/{name}/-/{name.split('/')[-1]}-{version}.tgz"
with urllib.request.urlopen(url, timeout=120) as r, open(out, "wb") as f:
    f.write(r.read())
PY
  fi
  if [[ ! -s "$TARBALL" ]]; then
    echo "fetch_vendor: could not fetch $name@$version" >&2
    exit 1
  fi
}

check_integrity() {  # file integrity
  local got
  if command -v openssl >/dev/null 2>&1; then
    got="sha512-$(openssl dgst -sha512 -binary "$1" | base64 -w0)"
  else
    got="sha512-$(python3 -c 'import base64, hashlib, sys; print(base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' "$1")"
  fi
  if [[ "$got" != "$2" ]]; then
    echo "fetch_vendor: integrity mismatch for $1" >&2
    echo "  expected $2" >&2
    echo "  got      $got" >&2
    exit 1
  fi
}

mkdir -p "$DEST"
for entry in "${PACKAGES[@]}"; do
  IFS='|' read -r name version integrity target keep <<<"$entry"
  echo "fetch_vendor: $name@$version -> $DEST/$target"
  fetch_tarball "$name" "$version"
  tgz="$TARBALL"
  check_integrity "$tgz" "$integrity"
  mkdir -p "$TMP/x-$target"
  tar -xzf "$tgz" -C "$TMP/x-$target"
  rm -rf "${DEST:?}/$target.new"
  mkdir -p "$DEST/$target.new"
  for path in $keep; do
    cp -R "$TMP/x-$target/package/$path" "$DEST/$target.new/"
  done
  rm -rf "${DEST:?}/$target"
  mv "$DEST/$target.new" "$DEST/$target"
done

# Source maps and unused bundles are not needed by the book.
find "$DEST/html-manager/dist" "$DEST/font-awesome/css" \( -name '*.map' -o -name 'embed.js' -o -name 'embed.js.LICENSE.txt' \) -delete
# Noto Sans SC: keep the regular weight's woff2 slices (3.7 of 70 MB), which is
# all that 400.css needs once its woff fallbacks are dropped.
find "$DEST/noto-sans-sc/files" -type f ! -name '*-400-normal.woff2' -delete
sed -i -E "s#, url\(\./files/[^)]*\.woff\) format\('woff'\)##" "$DEST/noto-sans-sc/400.css"
if grep -q "\.woff)" "$DEST/noto-sans-sc/400.css"; then
  echo "fetch_vendor: noto-sans-sc/400.css still names .woff files" >&2
  exit 1
fi
# MathJax's "latest.js" would load MathJax from a CDN; the book never uses it.
rm -f "$DEST/mathjax/es5/latest.js"

want_stamp >"$STAMP"
echo "fetch_vendor: done ($(du -sh "$DEST" | cut -f1) in $DEST)"
