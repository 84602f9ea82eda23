# Sourced by localstack/start and localstack/test: makes sure localstack/.venv
# exists and holds exactly requirements.txt. Safe for concurrent callers: the
# build runs under flock, and a hash stamp in the venv marks a finished build
# (it is rewritten, and pip re-run, whenever requirements.txt changes).

LOCALSTACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$LOCALSTACK_DIR/.venv"
VENV_PY="$VENV/bin/python"

_venv_is_current() {
  local want
  want="$(sha256sum "$LOCALSTACK_DIR/requirements.txt" | cut -d' ' -f1)"
  [[ -x "$VENV_PY" && -f "$VENV/.requirements.sha256" && "$(cat "$VENV/.requirements.sha256")" == "$want" ]]
}

ensure_venv() {
  _venv_is_current && return 0
  local lock="$LOCALSTACK_DIR/.venv.lock"
  (
    flock -w 900 9 || { echo "timed out waiting for $lock" >&2; exit 1; }
    _venv_is_current && exit 0
    local python="${PYTHON:-python3}"
    if [[ ! -x "$VENV_PY" ]] || ! "$VENV_PY" -c 'import sys' 2>/dev/null; then
      rm -rf "$VENV"
      echo "creating $VENV with $("$python" --version 2>&1)" >&2
      "$python" -m venv "$VENV" >&2 || exit 1
    fi
    echo "installing $LOCALSTACK_DIR/requirements.txt into $VENV" >&2
    "$VENV_PY" -m pip install --quiet --disable-pip-version-check \
      -r "$LOCALSTACK_DIR/requirements.txt" >&2 || exit 1
    sha256sum "$LOCALSTACK_DIR/requirements.txt" | cut -d' ' -f1 >"$VENV/.requirements.sha256"
  ) 9>"$lock"
}
