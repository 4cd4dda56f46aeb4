"""SCAFFOLD, replaced by the OCI work: the interface the engine relies on."""
from __future__ import annotations
from pathlib import Path


class Runtime:
    def __init__(self, exec_root: Path, runc: str = "runc", conmon: str = "conmon") -> None:
        self.exec_root = exec_root
