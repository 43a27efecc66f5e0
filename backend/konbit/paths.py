"""Where the project's own files are, for a source checkout (editable install)."""

from pathlib import Path

#: The repository root: it holds package.json, node_modules/ and build/contracts/.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
NODE_BIN = PROJECT_ROOT / "node_modules" / ".bin"
ARTIFACTS_DIR = PROJECT_ROOT / "build" / "contracts"
