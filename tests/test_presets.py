"""Method and baseline presets reach the estimator: every ``conf/method/*.yaml`` and
``conf/baselines/*.yaml``, composed as ``rdx-compare`` composes it and built as the pipeline builds it
(``rdx.preflight.configured_methods``), gives an estimator whose ``get_params()`` are exactly the
estimator's signature defaults with the preset's own changes: written out below by hand, so that a
preset that loses its setting (in the YAML, in composition or on the way to the estimator) fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rdx.cli import CONFIG_DIR
from rdx.methods import method_class
from rdx.preflight import configured_methods
from tests.conftest import compose_config

CONF = Path(CONFIG_DIR)

# Run-wide values the presets take by interpolation, set away from every signature default so that each
# one must travel from the run's config to the estimator: seed -> random_state, device -> device,
# method.params.n_concepts -> every baseline's n_concepts, features.progress -> the SAEs' progress.
RUN_OVERRIDES = ["seed=7", "device=cpu", "method.params.n_concepts=4", "features.progress=false"]

RDX_PRESET = {"gamma": 0.05, "device": "cpu", "random_state": 7, "n_concepts": 4}

# Preset -> what it changes from RDX's signature defaults (the run-wide values above included).
METHOD_PRESETS: dict[str, dict[str, Any]] = {
    "rdx": RDX_PRESET,
    "rdx_aligned": {**RDX_PRESET, "align": True},
    "rdx_eig_centrality": {**RDX_PRESET, "clustering": "eig_centrality"},
    "rdx_guided_labels": {**RDX_PRESET, "guidance": "labels"},
    "rdx_guided_probe": {**RDX_PRESET, "guidance": "probe"},
    "rdx_max_normalized_distance": {**RDX_PRESET, "similarity": "max_normalized_distance"},
    "rdx_pagerank": {**RDX_PRESET, "clustering": "pagerank"},
    "rdx_standard_difference": {**RDX_PRESET, "difference": "standard", "normalize_difference": True},
    "rdx_zp_local_scaling": {**RDX_PRESET, "similarity": "zp_local_scaling"},
}

BASELINE = {"n_concepts": 4, "random_state": 7}
SAE = {**BASELINE, "progress": False, "device": "cpu"}

# Baseline file -> {label: (registry name, what it changes from that estimator's signature defaults)}.
BASELINE_PRESETS: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {
    "kmeans": {"kmeans": ("kmeans", BASELINE)},
    "pca": {"pca": ("pca", BASELINE)},
    "nmf": {"nmf": ("nmf", BASELINE)},
    "cnmf": {"cnmf": ("cnmf", BASELINE)},
    "nlmcd": {"nlmcd": ("nlmcd", BASELINE)},
    "spec": {"spec": ("spec", {**BASELINE, "device": "cpu"})},
    "sae": {"sae": ("sae", SAE)},
    "topk_sae": {"topk_sae": ("topk_sae", SAE)},
    "usae": {"usae": ("usae", SAE)},
    "usae_1x": {"usae_1x": ("usae", {**SAE, "expansion": 1, "epochs": 100, "cpu_threads": None})},
}


def signature_defaults(name: str) -> dict[str, Any]:
    return method_class(name)().get_params(deep=False)


def test_every_preset_file_is_listed_here():
    assert sorted(METHOD_PRESETS) == sorted(p.stem for p in (CONF / "method").glob("*.yaml"))
    assert sorted(BASELINE_PRESETS) == sorted(p.stem for p in (CONF / "baselines").glob("*.yaml"))


def test_the_listed_changes_really_differ_from_the_defaults():
    # a listed value equal to the signature default would pass even if it never reached the estimator
    for name, changes in [("rdx", c) for c in METHOD_PRESETS.values()] + [
        entry for entries in BASELINE_PRESETS.values() for entry in entries.values()
    ]:
        defaults = signature_defaults(name)
        for key, value in changes.items():
            assert key in defaults and defaults[key] != value, (name, key)


@pytest.mark.parametrize("preset", sorted(METHOD_PRESETS))
def test_a_method_preset_reaches_the_estimator(preset):
    cfg = compose_config("compare", [f"method={preset}", "baselines=[]", *RUN_OVERRIDES])
    estimators = configured_methods(cfg)
    assert list(estimators) == [preset]  # the preset's label names it
    name, estimator = estimators[preset]
    assert name == "rdx" and type(estimator) is method_class("rdx")
    assert estimator.get_params(deep=False) == {**signature_defaults("rdx"), **METHOD_PRESETS[preset]}


@pytest.mark.parametrize("option", sorted(BASELINE_PRESETS))
def test_a_baseline_preset_reaches_the_estimator(option):
    cfg = compose_config("compare", [f"baselines=[{option}]", *RUN_OVERRIDES])
    estimators = configured_methods(cfg)
    expected = BASELINE_PRESETS[option]
    assert list(estimators) == ["rdx", *expected]  # the main method first, then the baseline
    for label, (name, changes) in expected.items():
        built_name, estimator = estimators[label]
        assert built_name == name and type(estimator) is method_class(name)
        assert estimator.get_params(deep=False) == {**signature_defaults(name), **changes}


def test_command_line_parameters_reach_the_estimator_over_the_preset():
    cfg = compose_config(
        "compare",
        [
            "method=rdx_pagerank",
            "method.params.cluster_size=5",
            "baselines=[usae_1x]",
            "baselines.usae_1x.params.epochs=3",
        ],
    )
    estimators = configured_methods(cfg)
    rdx = estimators["rdx_pagerank"][1].get_params()
    assert (rdx["clustering"], rdx["cluster_size"]) == ("pagerank", 5)
    usae = estimators["usae_1x"][1].get_params()
    assert (usae["expansion"], usae["epochs"]) == (1, 3)
