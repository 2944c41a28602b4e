"""The installed ``qalitel backup run --all`` on a real terminal (a pseudo-terminal) shows a
progress bar; piped, it prints only its lines. Configured the way operators do: through
``QALITEL_*`` variables. About the terminal, so on the embedded (SQLite) default only."""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.backup_world import make_world


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_progress_bar_on_a_terminal_only(make_app, backend, tmp_path, password_hash):
    world = make_world(make_app, backend, tmp_path, password_hash)
    settings = world.settings
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("QALITEL_")},
           "QALITEL_INSTANCE_DIR": str(settings.instance_dir),
           "QALITEL_SECRET_KEY": settings.secret_key,
           "QALITEL_ENCRYPTION_KEY": settings.encryption_key,
           "QALITEL_EXTERNAL_URL": "http://localhost",
           "QALITEL_BACKUP_TARGETS": ",".join(str(m) for m in world.media),
           "QALITEL_BACKUP_RECIPIENT": settings.backup_recipient}
    qalitel = shutil.which("qalitel", path=str(Path(sys.executable).parent))
    assert qalitel, "the qalitel entry point is installed beside the interpreter"

    primary, secondary = pty.openpty()
    process = subprocess.Popen([qalitel, "backup", "run", "--all"], env=env,
                               stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary)
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # EIO: the terminal's other side closed (the process ended)
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    assert process.wait() == 0, b"".join(chunks).decode(errors="replace")
    shown = b"".join(chunks).decode(errors="replace")
    assert "Backing up" in shown and "acme: backup 1 complete" in shown

    piped = subprocess.run([qalitel, "backup", "run", "--all"], env=env, capture_output=True,
                           check=False, stdin=subprocess.DEVNULL)
    assert piped.returncode == 0, piped.stderr.decode()
    assert b"Backing up" not in piped.stdout + piped.stderr
    assert b"acme: backup 2 complete" in piped.stdout
