#!/usr/bin/env python3
"""Set-up and the two everyday commands, with nothing but Python 3.11+ installed.

    python3 dev.py sample [akhbar sample options]   # ingest the bundled sample site, write Parquet
    python3 dev.py test [pytest options]            # run the test suite

Each command first makes sure ./.venv exists and holds this project with its test extra
(re-installed whenever pyproject.toml changes), then runs inside it.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("AKHBAR_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".akhbar-installed"

# Keep local runs and tests away from the cloud metadata address (google-auth probes it).
SAFE_ENV = {"NO_GCE_CHECK": "true", "GCE_METADATA_HOST": "127.0.0.1:9", "GCE_METADATA_IP": "127.0.0.1:9",
            "GCE_METADATA_ROOT": "127.0.0.1:9"}


def ensure_env() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"akhbar needs Python 3.11 or newer (this is {sys.version.split()[0]})")
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text().strip() == want and PY.exists():
        return
    if not PY.exists():
        print(f"dev.py: creating virtual environment {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True, clear=False).create(VENV)
    print("dev.py: installing akhbar and its dependencies (first time: about a minute)", flush=True)
    subprocess.run([str(PY), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--upgrade", "pip"], check=True)
    subprocess.run([str(PY), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-e", f"{ROOT}[test]"],
                   check=True)
    STAMP.write_text(want)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("sample", "test"):
        print(__doc__)
        return 2
    ensure_env()
    env = {**os.environ, **{k: os.environ.get(k, v) for k, v in SAFE_ENV.items()}}
    if argv[0] == "sample":
        cmd = [str(PY), "-m", "akhbar", "sample", *argv[1:]]
    else:
        cmd = [str(PY), "-m", "pytest", *argv[1:]]
    return subprocess.run(cmd, cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
