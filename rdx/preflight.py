"""Everything a comparison can check before any work: each method's parameters, the logger, the run dir.

Light on purpose (the estimators' modules, not the pipeline's figures, training or W&B): ``rdx-compare``
runs it first, so a bad setting fails within seconds, before any image is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from rdx.methods import build_method
from rdx.methods.params import check_method_params
from rdx.sinks.files import check_writable
from rdx.sinks.report_files import ReportSettings, report_settings

if TYPE_CHECKING:
    from rdx.metrics.significance import SignificanceSettings
from rdx.sinks.wandb_check import check_logger


@dataclass
class Preflight:
    """What was checked: every method's estimator (parameters checked) and the logger settings the run
    can use."""

    estimators: dict[str, tuple[str, Any]]
    logger: dict[str, Any]
    report: ReportSettings
    significance: SignificanceSettings


def preflight(cfg: DictConfig, output_dir: Path) -> Preflight:
    """Check every parameter, the logger and the run dir before any work: a bad setting fails here, not
    after training."""
    estimators = configured_methods(cfg)
    logger = check_logger(OmegaConf.to_container(cfg.logger, resolve=True))
    from rdx.metrics.significance import significance_settings  # torch: the estimators need it anyway

    report = report_settings(_section(cfg, "report"))
    significance = significance_settings(_section(cfg, "significance"))
    check_writable(Path(output_dir))
    return Preflight(estimators, logger, report, significance)


def _section(cfg: DictConfig, key: str) -> dict[str, Any] | None:
    """A config section as a plain dict (None when the config has none: the defaults)."""
    return OmegaConf.to_container(cfg[key], resolve=True) if key in cfg else None


def configured_methods(cfg: DictConfig) -> dict[str, tuple[str, Any]]:
    """Label → (registry name, unfitted estimator) of the main method, then of each selected baseline.

    Built before any data loads, so a misspelt or bad parameter fails at once (naming the valid keys).
    """
    entries = [(cfg.method.label, cfg.method.name, cfg.method.params, "method.params")]
    entries += [
        (label, b.name, b.params, f"baselines.{label}.params")
        for label, b in (cfg.get("baselines") or {}).items()
    ]
    labels = [label for label, *_ in entries]
    if len(set(labels)) != len(labels):
        raise ValueError(f"method labels must be unique, got {labels}")
    estimators = {}
    for label, name, params, where in entries:
        check_method_params(name, params, where=where)
        estimator = build_method(name, **OmegaConf.to_container(params, resolve=True))
        try:
            estimator.check_params()
        except ValueError as error:
            raise ValueError(f"{where} ({name}): {error}") from None
        estimators[label] = (name, estimator)
    return estimators
