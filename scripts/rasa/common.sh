# Shared settings of the Rasa scripts (sourced, not run).
RASA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$RASA_DIR/../.." && pwd)"
# Installing Rasa (~4 min) and training it on the knowledge base (~5-9 min) are the slowest
# steps of `make test`. Both are kept in a per-user cache outside the checkout, keyed by what
# they are built from (the pinned requirements; the exported training data plus those
# requirements), so a fresh clone reuses them and any change of their inputs rebuilds them.
RASA_CACHE="${RASA_CACHE:-${OTKLIK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/otklik}/rasa}"
RASA_REQUIREMENTS_HASH="$(sha256sum "$RASA_DIR/requirements.txt" | cut -c1-16)"
RASA_VENV="${RASA_VENV:-$RASA_CACHE/venv-$RASA_REQUIREMENTS_HASH}"
RASA_MODEL_CACHE="$RASA_CACHE/models"
RASA_WORK="${RASA_WORK:-$RASA_DIR/work}"
RASA_PROJECT="$RASA_WORK/project"
RASA_MODEL="$RASA_WORK/models/kb.tar.gz"
# No telemetry (there is no network but the package registries) and less TensorFlow noise.
export RASA_TELEMETRY_ENABLED=false
export TF_CPP_MIN_LOG_LEVEL=2
export PYTHONWARNINGS=ignore
