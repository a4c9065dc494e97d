#!/bin/sh
# Regenerate portal/static/bootstrap.trimmed.min.css, the part of Bootstrap's CSS
# the pages use (issue 16 item 4), from Bootstrap-Flask's local bootstrap.min.css
# with PurgeCSS 8 and scripts/purgecss.config.cjs (what is scanned and kept).
#
#   scripts/trim_css.sh            # from the repository root, with the venv's python
#
# Run it after adding Bootstrap classes to a template, a script or Python code
# that writes class names, or after upgrading Bootstrap-Flask; commit the result.
# PurgeCSS is installed once under $PURGECSS_DIR (default .cache/purgecss,
# not committed). A class only JavaScript adds at runtime must be in the
# safelist of scripts/purgecss.config.cjs.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
python=${PYTHON:-$root/.venv/bin/python}
npm_dir=${PURGECSS_DIR:-$root/.cache/purgecss}
if [ ! -x "$npm_dir/node_modules/.bin/purgecss" ]; then
  npm install --prefix "$npm_dir" --no-save purgecss@8
fi
BOOTSTRAP_CSS=$("$python" -c 'import flask_bootstrap, os; print(os.path.join(os.path.dirname(flask_bootstrap.__file__), "static", "bootstrap5", "css", "bootstrap.min.css"))')
TRIMMED_CSS=$(mktemp -d)
export BOOTSTRAP_CSS TRIMMED_CSS
"$npm_dir/node_modules/.bin/purgecss" --config scripts/purgecss.config.cjs
out=portal/static/bootstrap.trimmed.min.css
version=$("$python" -c 'import importlib.metadata as m; print(m.version("bootstrap-flask"))')
# @charset stays first (a rule before it would void it); the note follows.
sed '1s|^@charset "UTF-8";|@charset "UTF-8";/* Bootstrap-Flask '"$version"', trimmed by scripts/trim_css.sh (PurgeCSS 8): only the rules the pages use. */|' \
  "$TRIMMED_CSS/bootstrap.min.css" > "$out"
rm -r "$TRIMMED_CSS"
wc -c "$BOOTSTRAP_CSS" "$out"
