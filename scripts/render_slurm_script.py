"""Print the sbatch script that `rdx-compare -m hydra/launcher=slurm ...` would submit, without SLURM.

Usage:
    python scripts/render_slurm_script.py [--jobs N] [Hydra overrides of rdx-compare ...]
    python scripts/render_slurm_script.py --jobs 4 hydra.launcher.partition=gpu hydra.launcher.gpus_per_node=1

It composes the real config (conf/compare.yaml with hydra/launcher=slurm unless another launcher is
given) and maps the launcher's fields onto submitit's sbatch options as hydra-submitit-launcher does.
Needs the slurm extra: pip install 'rdx[slurm]'.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from rdx.cli import CONFIG_DIR

# hydra-submitit-launcher field -> sbatch option name in submitit (the rest keep their names)
_RENAMED = {"timeout_min": "time", "tasks_per_node": "ntasks_per_node", "name": "job_name"}
_NOT_SBATCH = {"_target_", "submitit_folder", "max_num_timeout", "mem_gb", "setup"}


def launcher_config(overrides: list[str]) -> dict[str, Any]:
    """The resolved hydra.launcher node of rdx-compare's config under these overrides."""
    if not any(o.startswith("hydra/launcher=") for o in overrides):
        overrides = ["hydra/launcher=slurm", *overrides]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="compare", overrides=overrides, return_hydra_config=True)
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    if "submitit" not in str(launcher.get("_target_", "")).lower():
        raise SystemExit(f"not a submitit launcher: {launcher.get('_target_')}")
    return launcher


def slurm_script(launcher: dict[str, Any], n_jobs: int) -> str:
    """The sbatch text for an array of ``n_jobs`` sweep jobs with these launcher settings."""
    from submitit.slurm.slurm import _make_sbatch_string  # the function submitit itself renders with

    options: dict[str, Any] = {
        _RENAMED.get(key, key): value
        for key, value in launcher.items()
        if key not in _NOT_SBATCH and value is not None
    }
    if launcher.get("mem_gb") is not None:
        options["mem"] = f"{launcher['mem_gb']}GB"
    options["setup"] = list(launcher.get("setup") or [])
    options["additional_parameters"] = dict(launcher.get("additional_parameters") or {})
    command = " ".join([sys.executable, "-u", "-m", "submitit.core._submit", "%j"])
    folder = launcher.get("submitit_folder") or ".submitit/%j"
    return _make_sbatch_string(command=command, folder=folder, map_count=n_jobs, **options)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="jobs in the sweep (the array size)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides of rdx-compare")
    args = parser.parse_args(argv)
    print(slurm_script(launcher_config(args.overrides), args.jobs))


if __name__ == "__main__":
    main()
