"""The stage's environment from .chalice/config.json, as Lambda would see it. The process's own
environment wins, so `HOLD_SECONDS=5 make run` overrides the stage default."""

from __future__ import annotations

import json
import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def stage_environment(stage: str, project_root: Path = PROJECT_ROOT) -> dict[str, str]:
    config = json.loads((project_root / ".chalice" / "config.json").read_text())
    if stage not in config.get("stages", {}):
        raise SystemExit(f"unknown stage {stage!r}; see .chalice/config.json")
    return {
        **config.get("environment_variables", {}),
        **config["stages"][stage].get("environment_variables", {}),
    }


def apply_stage_defaults(stage: str) -> None:
    for name, value in stage_environment(stage).items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("STAGE", stage)


def function_timeout(stage: str, function: str, project_root: Path = PROJECT_ROOT) -> int:
    """The function's lambda_timeout in this stage (Chalice's default, 60 s, if none is set)."""
    config = json.loads((project_root / ".chalice" / "config.json").read_text())
    stage_config = config.get("stages", {}).get(stage, {})
    return int(
        stage_config.get("lambda_functions", {}).get(function, {}).get("lambda_timeout")
        or stage_config.get("lambda_timeout")
        or config.get("lambda_timeout")
        or 60
    )
