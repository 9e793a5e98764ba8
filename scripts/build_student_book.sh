#!/usr/bin/env bash
# Build the student edition of the HTML book into _build/student-book/html: the same
# chapters with every solution left out (scripts/export_student_notebooks.py). The
# exercise cells are marked for the student to fill in; their check cells report "not
# attempted".
#
#   bash scripts/build_student_book.sh               # full-size chapters
#   LVAE_FAST=1 bash scripts/build_student_book.sh   # small, fast chapters
#
# The chapters are copied into _build/student-book/src (with links to results/ and the
# vendored assets) and built there with the book's own settings (warnings are errors).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export JUPYTER_PREFER_ENV_PATH=1
export PATH="$PWD/.venv/bin:$PATH"
export LVAE_THREADS="${LVAE_THREADS:-auto}"
OUT=_build/student-book
SRC=$OUT/src

[[ -f book/_static/vendor/mathjax/es5/tex-chtml.js ]] || bash scripts/fetch_vendor.sh
rm -rf "$SRC" "$OUT/html"
mkdir -p "$SRC/book"
cp _config.yml "$SRC/"
cp _toc.yml "$SRC/"
# everything the book needs except the notebooks, which come from the export
( cd book && find . -path ./_build -prune -o -path ./_static/vendor -prune -o -type f \
    ! -name '*.ipynb' -print ) | while read -r f; do
  mkdir -p "$SRC/book/$(dirname "$f")"; cp "book/$f" "$SRC/book/$f"
done
ln -s "$PWD/book/_static/vendor" "$SRC/book/_static/vendor"
ln -s "$PWD/results" "$SRC/results"      # the chapters read the full-length results
python scripts/export_student_notebooks.py --out "$SRC/book" book/*.ipynb

START=$(date +%s)
( cd "$SRC" && jupyter-book build -W -n --keep-going --path-output "$PWD/.." . )
mv "$OUT/_build/html" "$OUT/html"
echo "[build] student edition: $PWD/$OUT/html/index.html ($(( $(date +%s) - START )) s)"
