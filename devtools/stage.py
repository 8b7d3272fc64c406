"""A stage of .chalice/config.json as Lambda would see it, read by Chalice's own Config.

The process's own environment wins over the stage's defaults, so `HOLD_SECONDS=5 make run`
overrides the stage's 30 s.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

from chalice.config import Config

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_LAMBDA_TIMEOUT_S = 60  # Chalice's, when the config names none


def stage_config(stage: str, project_root: Path = PROJECT_ROOT) -> Config:
    """The stage's configuration; a stage the file does not name gets Chalice's defaults."""
    config_from_disk = json.loads((project_root / ".chalice" / "config.json").read_text())
    return Config(chalice_stage=stage, config_from_disk=config_from_disk)


def apply_stage_defaults(stage: str) -> None:
    config = stage_config(stage)
    if stage not in config.config_from_disk.get("stages", {}):
        raise SystemExit(f"unknown stage {stage!r}; see .chalice/config.json")
    for name, value in config.environment_variables.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("STAGE", stage)


@functools.cache
def function_timeout(stage: str, function: str, project_root: Path = PROJECT_ROOT) -> int:
    """The function's lambda_timeout in this stage. Cached: the event runner asks for every SQS
    batch and every schedule run, and the file does not change under a running process."""
    config = stage_config(stage, project_root).scope(stage, function)
    return int(config.lambda_timeout or DEFAULT_LAMBDA_TIMEOUT_S)
