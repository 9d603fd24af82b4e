# Sourced by the scripts: a project-local virtualenv with the project, the sandbox and the dev tools,
# at the exact versions of requirements-dev.lock (hashes checked; scripts/lock regenerates it).
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
source .venv/bin/activate
stamp=.venv/.installed-$(cat pyproject.toml requirements-dev.lock | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  python -m pip install --quiet --upgrade pip
  python -m pip install --quiet --require-hashes -r requirements-dev.lock
  # The project itself, editable; its dependencies are all in from the lock already.
  python -m pip install --quiet --no-deps -e ".[dev,sandbox]"
  python -m pip check
  rm -f .venv/.installed-*
  touch "$stamp"
fi
