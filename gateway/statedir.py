"""The state directory (the store, the test PKI, the journal's checkpoints): found the same way by every command.

In order: ``--state-dir``, else ``$SHEP_STATE_DIR``, else the config's ``gateway.state_dir`` (relative to that
file), else the per-user default ``$XDG_STATE_HOME/shep`` (``~/.local/state/shep``). Never the current folder:
a command run from another folder must not quietly find, or make, an empty state of its own.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

ENV = "SHEP_STATE_DIR"


@dataclass(frozen=True)
class StateDir:
    path: Path
    # Where the path came from, as the user would name it: "--state-dir", "SHEP_STATE_DIR", "config <file>"…
    source: str

    def describe(self) -> str:
        return f"state dir: {self.path} (from {self.source})"

    def missing(self) -> str | None:
        """Why a command that reads existing state cannot use it; None when it can."""
        if self.path.is_dir():
            return None
        what = "is not a directory" if self.path.exists() else "does not exist"
        return (f"state dir {self.path} {what} (from {self.source}); point --state-dir or {ENV} at the state dir "
                f"of a server that has run")


def user_default(environ: Mapping[str, str] = os.environ) -> Path:
    """``$XDG_STATE_HOME/shep``; the XDG base-directory spec ignores a relative or empty XDG_STATE_HOME.

    By hand rather than with platformdirs: three lines, and the project runs where fcntl does (Linux, BSD), where
    platformdirs would answer the same path.
    """
    base = environ.get("XDG_STATE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path(environ.get("HOME") or Path.home()) / ".local" / "state"
    return root / "shep"


def resolve(option: str | os.PathLike | None, configured: Path | None = None, config_file: Path | None = None,
            environ: Mapping[str, str] = os.environ) -> StateDir:
    """The state dir from the command line `option`, the environment, the config's (already resolved against
    `config_file`) `configured` path, or the per-user default; always absolute."""
    if option:
        return StateDir(Path(option).expanduser().absolute(), "--state-dir")
    if environ.get(ENV):
        return StateDir(Path(environ[ENV]).expanduser().absolute(), ENV)
    if configured is not None:
        return StateDir(Path(configured).absolute(), f"config {config_file}" if config_file else "config")
    return StateDir(user_default(environ), "the per-user default")
