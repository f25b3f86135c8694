"""Method parameters: each estimator's ``__init__`` signature is the one source of their defaults; the
method and baseline configs list only what differs; a misspelt key fails at once naming the valid ones;
every parameter can be overridden from the command line without "+"."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from rdx.cli import CONFIG_DIR, check_method_configs
from rdx.methods import METHODS, method_class
from rdx.methods.params import check_method_params, method_parameters
from tests.conftest import compose_config

CONF = Path(CONFIG_DIR)
METHOD_FILES = sorted((CONF / "method").glob("*.yaml"))
BASELINE_FILES = sorted((CONF / "baselines").glob("*.yaml"))


def _configured(path: Path) -> list[tuple[str, str, dict, dict]]:
    """(where, registry name, the file's own params unresolved, the composed params resolved) per
    method the file declares."""
    if path.parent.name == "method":
        cfg = compose_config("compare", [f"method={path.stem}"])
        own = OmegaConf.to_container(OmegaConf.load(path).get("params") or {}, resolve=False)
        composed = OmegaConf.to_container(cfg.method.params, resolve=True)
        return [(f"method={path.stem}", cfg.method.name, own, composed)]
    cfg = compose_config("compare", [f"baselines=[{path.stem}]"])
    file = OmegaConf.load(path)
    return [
        (
            f"baselines.{label}",
            cfg.baselines[label].name,
            OmegaConf.to_container(file[label].get("params") or {}, resolve=False),
            OmegaConf.to_container(cfg.baselines[label].params, resolve=True),
        )
        for label in file
        if label != "defaults"
    ]


def test_parameters_read_from_the_source_equal_the_imported_signature():
    for name in METHODS:
        signature = list(inspect.signature(method_class(name).__init__).parameters.values())[1:]
        expected = [(p.name, p.default, p.annotation) for p in signature]
        read = [(p.name, p.default, p.annotation) for p in method_parameters(name).values()]
        assert read == expected, name


def test_reading_the_parameters_imports_no_estimator_and_no_torch():
    code = textwrap.dedent(
        """
        import json, sys
        from rdx.methods import METHODS
        from rdx.methods.params import method_parameters
        for name in METHODS:
            method_parameters(name)
        print(json.dumps(sorted(sys.modules)))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    imported = json.loads(done.stdout.splitlines()[-1])
    estimators = {target.partition(":")[0] for target in METHODS.values()}
    assert not estimators & set(imported), imported
    assert not [module for module in imported if module.split(".")[0] in ("torch", "sklearn", "umap")]


def test_a_default_the_source_cannot_spell_is_read_by_importing(tmp_path, monkeypatch):
    (tmp_path / "computed_default_estimator.py").write_text(
        textwrap.dedent(
            """
            SIZE = 2 * 8

            class Computed:
                def __init__(self, n_concepts: int = 3, size: int = SIZE, scale=None):
                    self.n_concepts, self.size, self.scale = n_concepts, size, scale
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(METHODS, "computed", "computed_default_estimator:Computed")
    parameters = method_parameters("computed")
    assert [(p.name, p.default, p.annotation) for p in parameters.values()] == [
        ("n_concepts", 3, "int"),
        ("size", 16, "int"),
        ("scale", None, ""),
    ]


def test_check_method_params_names_the_unknown_key_and_the_valid_ones():
    check_method_params("rdx", {"gamma": 0.1, "beta": 2.0})  # known keys pass
    with pytest.raises(ValueError) as raised:
        check_method_params("rdx", {"gamma": 0.1, "gama": 0.1}, where="method.params")
    message = str(raised.value)
    assert message.startswith("method.params (rdx) has no parameter 'gama' (did you mean 'gamma'?)")
    assert (
        "Valid parameters of rdx: n_concepts, similarity, difference, normalize_difference, gamma, "
        in message
    )
    assert "rdx.methods.rdx.RDX" in message  # where they are documented
    with pytest.raises(ValueError, match=r"parameters 'n_int' \(did you mean 'n_init'\?\), 'colour'.*n_init"):
        check_method_params("kmeans", {"n_int": 3, "colour": "red"})
    with pytest.raises(ValueError, match="unknown method 'kmean'; registered methods: cnmf, kmeans"):
        check_method_params("kmean", {})


@pytest.mark.parametrize("path", METHOD_FILES + BASELINE_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_each_config_lists_only_what_differs_from_the_signature(path):
    for where, name, own, composed in _configured(path):
        defaults = {key: parameter.default for key, parameter in method_parameters(name).items()}
        for key, value in own.items():
            assert key in defaults, f"{where}: {key} is not a parameter of {name}"
            interpolation = isinstance(value, str) and "${" in value
            assert interpolation or value != defaults[key], f"{where}: {key}: {value!r} is the default"
        # and the composed config holds every parameter, so any of them can be overridden without "+"
        assert list(composed) == list(defaults), where


def test_a_parameter_not_written_in_the_yaml_overrides_without_plus():
    assert "beta" not in OmegaConf.load(CONF / "method" / "rdx.yaml").params
    assert "n_init" not in OmegaConf.load(CONF / "baselines" / "kmeans.yaml").kmeans.params
    cases = [
        (["method.params.beta=2.0"], "method.params.beta", 2.0),
        (["method=rdx_aligned", "method.params.alignment_steps=5"], "method.params.alignment_steps", 5),
        (["baselines=[kmeans]", "baselines.kmeans.params.n_init=3"], "baselines.kmeans.params.n_init", 3),
        (["experiment=mnist_835", "baselines.sae.params.epochs=7"], "baselines.sae.params.epochs", 7),
        (["experiment=dino_vs_dinov2", "method.params.path=sparse"], "method.params.path", "sparse"),
    ]
    for overrides, key, expected in cases:
        cfg = compose_config("compare", overrides)
        assert OmegaConf.select(cfg, key) == expected, overrides
        check_method_configs(cfg)


def test_the_hyperparameter_searches_name_existing_parameters():
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    for path in sorted((CONF / "hparams_search").glob("*.yaml")):
        searched = OmegaConf.load(path).hydra.sweeper.params
        cfg = compose_config("compare", [f"hparams_search={path.stem}"])
        for key in searched:
            assert OmegaConf.select(cfg, key, default="absent") != "absent", (path.stem, key)


def test_a_wrong_type_fails_at_compose():
    with pytest.raises(Exception, match="method.params.gamma=abc") as raised:
        compose_config("compare", ["method.params.gamma=abc"])
    assert "could not be converted to Float" in str(raised.value.__cause__)
    with pytest.raises(Exception, match="n_init=many"):
        compose_config("compare", ["baselines=[kmeans]", "baselines.kmeans.params.n_init=many"])


def test_a_misspelt_key_fails_at_once_before_any_data_or_model_work():
    """Composing and checking the config takes well under a couple of seconds and loads neither the
    data, the models nor the comparison pipeline."""
    code = textwrap.dedent(
        """
        import json, sys, time
        from hydra import compose, initialize_config_dir
        from rdx.cli import CONFIG_DIR, check_method_configs
        messages = []
        misspelt = (["method.params.gama=0.1"], ["baselines=[kmeans]", "baselines.kmeans.params.n_int=3"])
        for overrides in misspelt:
            started = time.perf_counter()
            with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
                cfg = compose(config_name="compare", overrides=overrides)
            try:
                check_method_configs(cfg)
            except ValueError as error:
                messages.append([str(error), time.perf_counter() - started])
        loaded = sorted(m for m in sys.modules if m.startswith(("rdx.data", "rdx.models", "rdx.compare")))
        print(json.dumps({"messages": messages, "loaded": loaded}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    report = json.loads(done.stdout.splitlines()[-1])
    (method, method_s), (baseline, baseline_s) = report["messages"]
    assert "method.params (rdx) has no parameter 'gama' (did you mean 'gamma'?)" in method
    assert "gamma, gamma_scale, beta" in method
    assert "baselines.kmeans.params (kmeans) has no parameter 'n_int' (did you mean 'n_init'?)" in baseline
    assert "Valid parameters of kmeans: n_concepts, grid_size, random_state, n_init" in baseline
    assert method_s < 3 and baseline_s < 3
    assert report["loaded"] == []


def test_a_misspelt_key_in_a_users_own_experiment_file_names_the_valid_keys(tmp_path):
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "mine.yaml").write_text(
        "# @package _global_\ndefaults:\n  - mnist_835\n\nmethod:\n  params:\n    gama: 0.2\n"
        "baselines:\n  kmeans:\n    params:\n      n_int: 3\n"
    )
    cfg = compose_config("compare", [f"hydra.searchpath=[file://{tmp_path}]", "experiment=mine"])
    with pytest.raises(ValueError, match=r"method.params \(rdx\) has no parameter 'gama'.*gamma_scale"):
        check_method_configs(cfg)
    OmegaConf.set_struct(cfg, False)
    del cfg.method.params["gama"]
    with pytest.raises(ValueError, match=r"baselines.kmeans.params \(kmeans\) has no parameter 'n_int'"):
        check_method_configs(cfg)
