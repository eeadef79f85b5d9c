# Shared settings of the Rasa scripts (sourced, not run).
RASA_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$RASA_DIR/../.." && pwd)"
RASA_VENV="${RASA_VENV:-$RASA_DIR/.venv}"
RASA_WORK="${RASA_WORK:-$RASA_DIR/work}"
RASA_PROJECT="$RASA_WORK/project"
RASA_MODEL="$RASA_WORK/models/kb.tar.gz"
# No telemetry (there is no network but the package registries) and less TensorFlow noise.
export RASA_TELEMETRY_ENABLED=false
export TF_CPP_MIN_LOG_LEVEL=2
export PYTHONWARNINGS=ignore
