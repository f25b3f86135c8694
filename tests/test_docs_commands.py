"""The docs cannot drift from the configs.

Every ``rdx-compare`` / ``rdx-train`` command line written in README.md or docs/*.md (fenced code blocks
and inline code) is composed against the repository's ``conf/`` as the entry point would compose it
(config ``compare`` or ``train``, Hydra's own config included, so launcher and sweeper overrides are
checked too). A doc that names a config group option or a key that does not exist fails here with the
doc file, its line and Hydra's error. So does a key override that replaces a whole config section with
a value (``model_a=x`` for ``model@model_a=x``), which Hydra itself lets through.

How a command is read:

- code blocks: one logical shell line at a time (``\\`` continuations joined, ``#`` comments dropped,
  shell quoting removed, ``;`` / ``&&`` / ``|`` split commands); inline code: every backtick span;
- the program may carry a path (``.venv/bin/``, ``$(BIN)/``) and environment assignments before it;
- ``-m`` / ``--multirun``: every value of every comma list / ``range()`` sweep is composed at least once
  (one job with each sweep at its first value, then one job per further value);
- placeholders: a lone ``...`` argument is dropped; ``<name>`` and ``...`` values of keys become a
  dummy string; a group option given as a placeholder is dropped after checking that the group exists;
- ``hydra/launcher=`` / ``hydra/sweeper=`` naming a Hydra plugin that is not installed here (e.g. the
  Ray launcher, an optional extra) is dropped with its ``hydra.launcher.*`` / ``hydra.sweeper.*`` keys,
  with a warning; an installed plugin or a launcher file in ``conf/hydra/`` is composed for real;
- a doc may define a config in a YAML code block whose first line is ``# conf/<group>/<name>.yaml``;
  that doc's commands are composed against a copy of ``conf/`` with those files added.

Speed: Hydra composes the group choices (slow: it reads and merges every file) and then applies the key
overrides. The first step is shared by every job with the same group choices, the second is Hydra's own
function; a test checks that the two steps give what one ``compose`` call gives.
"""

from __future__ import annotations

import copy
import importlib.util
import re
import shlex
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, ValueType
from hydra.types import RunMode
from omegaconf import DictConfig, ListConfig, OmegaConf

from rdx.cli import check_method_configs

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
APPS = {"rdx-compare": "compare", "rdx-train": "train"}

# Hydra plugins the docs may name; when one is not installed here its overrides cannot be composed.
PLUGINS = {
    ("hydra/launcher", "joblib"): "hydra_plugins.hydra_joblib_launcher",
    ("hydra/launcher", "ray"): "hydra_plugins.hydra_ray_launcher",
    ("hydra/launcher", "submitit_slurm"): "hydra_plugins.hydra_submitit_launcher",
    ("hydra/launcher", "submitit_local"): "hydra_plugins.hydra_submitit_launcher",
    ("hydra/sweeper", "optuna"): "hydra_plugins.hydra_optuna_sweeper",
}
WRAPPERS = {"time", "nohup", "env"}
FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p"}
FLAGS_WITHOUT_VALUE = {"--help", "-h", "--hydra-help", "--info", "-i", "--resolve", "--run", "-r"}
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
PLACEHOLDER = re.compile(r"<[^<>\s]*>|\.\.\.|…")
FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
DEFINED_CONFIG = re.compile(r"^#\s*(conf/[\w./-]+\.ya?ml)\s*$")
SEPARATORS = {";", "&&", "||", "|", "&"}
ENUMERABLE_SWEEPS = (ValueType.CHOICE_SWEEP, ValueType.SIMPLE_CHOICE_SWEEP, ValueType.RANGE_SWEEP)


@dataclass(frozen=True)
class DocCommand:
    """One rdx-compare / rdx-train command line found in a doc."""

    doc: str  # path relative to the repository
    line: int  # 1-based line where the command starts
    text: str  # the command as written (continuations joined)
    config_name: str  # compare | train
    multirun: bool
    overrides: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())  # what the reader dropped (placeholders)
    problem: str = ""  # why the line could not be read as a command (it then fails)

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


# --- reading docs -------------------------------------------------------------------------------------


def snippets(text: str) -> Iterator[tuple[int, str]]:
    """(line, code): the logical lines of fenced code blocks, then the inline code spans."""
    lines = text.splitlines()
    prose = list(lines)
    in_block = False
    pending: tuple[int, str] | None = None
    for number, line in enumerate(lines, start=1):
        if FENCE.match(line):
            in_block = not in_block
            prose[number - 1] = ""
            if pending is not None:  # a continuation that ran into the fence
                yield pending
                pending = None
            continue
        if not in_block:
            continue
        prose[number - 1] = ""
        start, code = pending if pending is not None else (number, "")
        stripped = line.rstrip()
        if stripped.endswith("\\") and not stripped.lstrip().startswith("#"):
            pending = (start, code + stripped[:-1] + " ")
            continue
        pending = None
        yield start, code + stripped
    if pending is not None:
        yield pending
    body = "\n".join(prose)
    for match in INLINE_CODE.finditer(body):
        span = match.group(2)
        if "\n\n" in span:  # a code span never crosses a paragraph
            continue
        yield body.count("\n", 0, match.start()) + 1, span.replace("\n", " ")


def defined_configs(text: str) -> dict[str, str]:
    """YAML code blocks that start with ``# conf/<group>/<name>.yaml``: path -> content."""
    found: dict[str, str] = {}
    blocks = re.findall(r"^\s*```[^\n]*\n(.*?)^\s*```", text, flags=re.DOTALL | re.MULTILINE)
    for block in blocks:
        first = block.lstrip("\n").splitlines()[0] if block.strip() else ""
        match = DEFINED_CONFIG.match(first.strip())
        if match:
            found[match.group(1)] = block
    return found


def _program(token: str) -> str | None:
    name = token.rsplit("/", 1)[-1]
    return APPS.get(name)


def _is_group(key: str) -> bool:
    group = key.lstrip("+~").split("@", 1)[0]
    return group.startswith("hydra/") or (CONF / group).is_dir()


def _shell_commands(code: str) -> list[list[str]]:
    lexer = shlex.shlex(code, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    tokens = list(lexer)
    commands: list[list[str]] = [[]]
    for token in tokens:
        if token in SEPARATORS:
            commands.append([])
        else:
            commands[-1].append(token)
    return [command for command in commands if command]


def parse_command(doc: str, line: int, code: str, tokens: list[str]) -> DocCommand | None:
    """A DocCommand when ``tokens`` run rdx-compare / rdx-train, else None."""
    position = next((i for i, token in enumerate(tokens) if _program(token) is not None), None)
    if position is None:
        return None
    if not all(ENV_ASSIGNMENT.match(token) or token in WRAPPERS for token in tokens[:position]):
        return None  # another program that mentions rdx-compare (grep, echo …)
    config_name = _program(tokens[position])
    multirun = False
    overrides: list[str] = []
    notes: list[str] = []
    arguments = iter(tokens[position + 1 :])
    for argument in arguments:
        if argument in ("-m", "--multirun"):
            multirun = True
        elif argument in ("-cn", "--config-name"):
            config_name = next(arguments)
        elif argument.startswith(("--config-name=", "-cn=")):
            config_name = argument.split("=", 1)[1]
        elif argument in FLAGS_WITH_VALUE:
            next(arguments, None)
        elif argument in FLAGS_WITHOUT_VALUE:
            continue
        elif argument.startswith("-"):
            raise ValueError(f"unknown option {argument!r} of {tokens[position]}")
        elif PLACEHOLDER.fullmatch(argument):
            notes.append(f"dropped the elided argument {argument!r}")
        elif "=" not in argument:
            raise ValueError(f"{argument!r} is not a Hydra override (key=value)")
        else:
            key, value = argument.split("=", 1)
            if PLACEHOLDER.search(value):
                if _is_group(key):  # the group exists; which option is the reader's choice
                    notes.append(f"dropped the placeholder group option {argument!r}")
                    continue
                argument = f"{key}={PLACEHOLDER.sub('placeholder', value)}"
            overrides.append(argument)
    return DocCommand(doc, line, code.strip(), config_name, multirun, tuple(overrides), tuple(notes))


def read_commands(doc: str, text: str) -> list[DocCommand]:
    """Every rdx-compare / rdx-train command of one doc; unparseable ones become errors at compose."""
    commands: list[DocCommand] = []
    for line, code in snippets(text):
        if not any(name in code for name in APPS):
            continue
        try:
            shell = _shell_commands(code)
        except ValueError as error:  # unbalanced quotes
            commands.append(DocCommand(doc, line, code.strip(), "compare", False, (), problem=str(error)))
            continue
        for tokens in shell:
            try:
                command = parse_command(doc, line, code, tokens)
            except (ValueError, StopIteration) as error:
                problem = str(error) or "an option without its value"
                command = DocCommand(doc, line, code.strip(), "compare", False, (), problem=problem)
            if command is not None:
                commands.append(command)
    return commands


def doc_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


# --- composing ----------------------------------------------------------------------------------------


def _without_absent_plugins(overrides: list[str]) -> tuple[list[str], list[str]]:
    """Drop launcher / sweeper overrides of plugins that are not installed here (and their keys)."""
    kept, notes, dropped_nodes = [], [], []
    for override in overrides:
        key, _, value = override.partition("=")
        module = PLUGINS.get((key.lstrip("+~"), value))
        local_file = (CONF / key.lstrip("+~") / f"{value}.yaml").is_file()
        if module is not None and not local_file and importlib.util.find_spec(module) is None:
            dropped_nodes.append(key.lstrip("+~").replace("/", "."))
            notes.append(f"{override} (plugin {module} is not installed here)")
        else:
            kept.append(override)
    if dropped_nodes:
        kept = [o for o in kept if not o.lstrip("+~").startswith(tuple(f"{n}." for n in dropped_nodes))]
    return kept, notes


def jobs(command: DocCommand) -> list[list[str]]:
    """The override lists to compose: one job, or for a multirun every value of every sweep once."""
    if not command.multirun:
        return [list(command.overrides)]
    parsed: list[Override] = OverridesParser.create().parse_overrides(list(command.overrides))
    choices: list[list[str]] = []
    for override in parsed:
        if not override.is_sweep_override():
            choices.append([override.input_line])
        elif override.value_type in ENUMERABLE_SWEEPS:
            key = override.get_key_element()
            choices.append([f"{key}={value}" for value in override.sweep_string_iterator()])
        else:  # interval / tagged sweeps are the Optuna sweeper's: compose one value inside
            key = override.get_key_element()
            choices.append([f"{key}={override.value().start}"])
    first = [values[0] for values in choices]
    result = [first]
    for position, values in enumerate(choices):
        for value in values[1:]:
            result.append(first[:position] + [value] + first[position + 1 :])
    return result


_BASES: dict[tuple[str, str, tuple[str, ...]], DictConfig] = {}


def _kind(value: object) -> str:
    if isinstance(value, (dict, DictConfig)):
        return "section"
    if isinstance(value, (list, ListConfig)):
        return "list"
    return "value"


def _base(config_dir: Path, config_name: str, groups: tuple[str, ...]) -> DictConfig:
    """The config composed from the group choices alone (cached: many doc commands share them)."""
    cache_key = (str(config_dir), config_name, groups)
    if cache_key not in _BASES:
        _BASES[cache_key] = compose(config_name=config_name, overrides=list(groups), return_hydra_config=True)
    return _BASES[cache_key]


def type_changes(base: DictConfig, keys: list[Override]) -> list[str]:
    """Key overrides that put a value where the config has a section or a list, or the reverse.

    Hydra lets ``model_a=my_model`` replace the whole ``model_a`` section with a string; the entry point
    would then fail far from the doc.
    """
    problems = []
    for override in keys:
        if override.is_add() or override.is_delete() or override.is_force_add():
            continue
        before = OmegaConf.select(base, override.key_or_group, default=None)
        value = override.value()
        if before is None or value is None or _kind(before) == _kind(value):
            continue
        problems.append(
            f"`{override.input_line}` puts a {_kind(value)} where the config has a {_kind(before)} "
            f"`{override.key_or_group}` (a config group option at a package is chosen with "
            f"`group@{override.key_or_group}=option`)"
        )
    return problems


def compose_job(config_dir: Path, config_name: str, overrides: list[str]) -> tuple[DictConfig, list[str]]:
    """Compose one job as Hydra's compose API would: the config and its problems (Hydra raises).

    Hydra composes the defaults list from the group choices and then applies the key overrides to the
    result. This does the same in two steps with Hydra's own functions, so that the (slow) first step
    is shared by every doc command with the same group choices.
    """
    parsed = OverridesParser.create().parse_overrides(overrides)
    ConfigLoaderImpl.validate_sweep_overrides_legal(parsed, run_mode=RunMode.RUN, from_shell=True)
    groups = tuple(o.input_line for o in parsed if _is_group(o.key_or_group))
    keys = [o for o in parsed if not _is_group(o.key_or_group)]
    base = _base(config_dir, config_name, groups)
    problems = type_changes(base, keys)
    cfg = copy.deepcopy(base)
    ConfigLoaderImpl._apply_overrides_to_config(keys, cfg)
    return cfg, problems


def compose_errors(command: DocCommand, config_dir: Path = CONF) -> list[str]:
    """Hydra's error for every job of ``command`` that does not compose (empty: all compose)."""
    if command.problem:
        return [f"{command.where}: cannot read `{command.text}`: {command.problem}"]
    try:
        job_list = jobs(command)
    except Exception as error:  # an override Hydra cannot parse
        return [f"{command.where}: `{command.text}`\n    {type(error).__name__}: {error}"]
    errors = []
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        for overrides in job_list:
            overrides, notes = _without_absent_plugins(overrides)
            for note in notes:
                warnings.warn(f"{command.where}: not composed: {note}", stacklevel=2)
            try:
                cfg, problems = compose_job(config_dir, command.config_name, overrides)
                if command.config_name == "compare":
                    check_method_configs(cfg)  # what rdx-compare checks first: parameter names
            except Exception as error:
                problems = [f"{type(error).__name__}: {error}".strip()]
            for problem in problems:
                errors.append(
                    f"{command.where}: `{command.text}`\n    job: rdx-{command.config_name} "
                    f"{' '.join(overrides)}\n    " + problem.replace("\n", "\n    ")
                )
    return errors


# --- the docs of this repository ----------------------------------------------------------------------


def repo_commands() -> list[DocCommand]:
    found = []
    for path in doc_files():
        found += read_commands(str(path.relative_to(REPO)), path.read_text(encoding="utf-8"))
    return found


COMMANDS = repo_commands()


@pytest.fixture(scope="module")
def config_dirs(tmp_path_factory) -> dict[str, Path]:
    """conf/ itself, or for a doc that defines configs a copy of conf/ with them added."""
    dirs: dict[str, Path] = {}
    for path in doc_files():
        doc = str(path.relative_to(REPO))
        defined = defined_configs(path.read_text(encoding="utf-8"))
        if not defined:
            dirs[doc] = CONF
            continue
        root = tmp_path_factory.mktemp("conf_" + re.sub(r"\W", "_", doc))
        shutil.copytree(CONF, root / "conf")
        for relative, content in defined.items():
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_text(content, encoding="utf-8")
        dirs[doc] = root / "conf"
    return dirs


def test_the_docs_hold_the_commands_they_should():
    """A guard against a reader that silently finds nothing: the pages that show commands are read."""
    docs = {command.doc for command in COMMANDS}
    assert "README.md" in docs
    assert len(COMMANDS) >= 20, [command.where for command in COMMANDS]
    assert any(c.config_name == "train" for c in COMMANDS)
    assert any(c.multirun for c in COMMANDS)
    texts = " ".join(c.text for c in COMMANDS if c.doc == "README.md")
    assert "experiment=mnist_835" in texts  # make demo's job


def _ids(commands: list[DocCommand]) -> list[str]:
    """doc:line, with #2, #3 … for further commands on the same line."""
    ids, seen = [], {}
    for command in commands:
        seen[command.where] = seen.get(command.where, 0) + 1
        ids.append(command.where + (f"#{seen[command.where]}" if seen[command.where] > 1 else ""))
    return ids


@pytest.mark.parametrize("command", COMMANDS, ids=_ids(COMMANDS))
def test_doc_command_composes(command: DocCommand, config_dirs):
    errors = compose_errors(command, config_dirs[command.doc])
    assert not errors, "\n".join(errors)


# --- the reader and the checker on made-up docs -------------------------------------------------------

MADE_UP_DOC = """\
# Title

Run `rdx-compare experiment=mnist_835 method=rdx_aligned` or `make demo`; see `rdx-table`.
An inline command may wrap: `rdx-compare experiment=mnist_835
method.params.clustering=pagerank`.

```bash
# a comment: rdx-compare experiment=not_a_command
.venv/bin/rdx-compare experiment=mnist_835 \\
    'baselines=[kmeans,pca]' logger=disabled   # trailing comment
$(BIN)/rdx-train training=m35 && echo done
RAY_AUTH_MODE=token rdx-compare -m ... hydra/launcher=joblib hydra.launcher.n_jobs=2
rdx-compare --multirun experiment=m35_vs_mnist,m49_vs_mnist,m35_vs_m49 method.params.gamma=0.05,0.1
rdx-compare experiment=mnist_835 method=<preset> paths.cub_pcbm=/path/to/<yours> model_b.checkpoint=...
python scripts/render_slurm_script.py hydra.launcher.partition=gpu
```
"""


def test_the_reader_handles_shell_forms():
    commands = read_commands("made_up.md", MADE_UP_DOC)
    found = [(c.line, c.config_name, c.multirun, c.overrides) for c in commands]
    assert found == [
        (9, "compare", False, ("experiment=mnist_835", "baselines=[kmeans,pca]", "logger=disabled")),
        (11, "train", False, ("training=m35",)),
        (12, "compare", True, ("hydra/launcher=joblib", "hydra.launcher.n_jobs=2")),
        (
            13,
            "compare",
            True,
            ("experiment=m35_vs_mnist,m49_vs_mnist,m35_vs_m49", "method.params.gamma=0.05,0.1"),
        ),
        (
            14,
            "compare",
            False,
            ("experiment=mnist_835", "paths.cub_pcbm=/path/to/placeholder", "model_b.checkpoint=placeholder"),
        ),
        (3, "compare", False, ("experiment=mnist_835", "method=rdx_aligned")),
        (4, "compare", False, ("experiment=mnist_835", "method.params.clustering=pagerank")),
    ]
    assert commands[4].notes == ("dropped the placeholder group option 'method=<preset>'",)
    for command in commands:
        assert compose_errors(command) == [], command.where


def test_a_sweep_composes_every_value():
    (command,) = [c for c in read_commands("made_up.md", MADE_UP_DOC) if c.line == 13]
    assert jobs(command) == [
        ["experiment=m35_vs_mnist", "method.params.gamma=0.05"],
        ["experiment=m49_vs_mnist", "method.params.gamma=0.05"],
        ["experiment=m35_vs_m49", "method.params.gamma=0.05"],
        ["experiment=m35_vs_mnist", "method.params.gamma=0.1"],
    ]


BAD_DOC = """\
Text with `rdx-compare experiment=mnist_835 method=rdx_no_such_preset`.

```bash
rdx-compare experiment=mnist_835 method.params.gama=0.1
rdx-compare -m experiment=mnist_835,no_such_experiment
rdx-train training=no_such_training
rdx-compare experiment=mnist_835 method.params.gamma=0.05,0.1
rdx-compare -m experiment=mnist_835 hydra/launcher=joblib hydra.launcher.n_workers=2
rdx-compare experiment=mnist_835 'baselines=[kmeans,pca'
rdx-compare model_a=mnist_expert
rdx-compare --no-such-flag experiment=mnist_835
rdx-compare 'experiment=mnist_835
```
"""


def test_a_bad_command_line_fails_with_the_doc_line_and_the_error():
    errors = {c.line: compose_errors(c) for c in read_commands("docs/bad.md", BAD_DOC)}
    expected = {
        1: "rdx_no_such_preset",  # a group option that does not exist
        4: "gama",  # a key that does not exist
        5: "no_such_experiment",  # the last value of a sweep
        6: "no_such_training",
        7: "--multirun",  # a comma list without -m
        8: "n_workers",  # a launcher key that does not exist
        9: "baselines",  # an override Hydra cannot parse
        10: "puts a value where the config has a section",  # model_a=... instead of model@model_a=...
        11: "unknown option '--no-such-flag'",
        12: "No closing quotation",
    }
    assert sorted(errors) == sorted(expected)
    for line, needle in expected.items():
        assert len(errors[line]) == 1, errors[line]
        assert errors[line][0].startswith(f"docs/bad.md:{line}: "), errors[line]
        assert needle in errors[line][0], errors[line]


@pytest.mark.parametrize(
    "overrides",
    [
        ["experiment=mnist_835", "method.params.gamma=0.1", "baselines=[kmeans,pca]", "logger=disabled"],
        ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "++hydra.launcher.prefer=threads", "+x.y=1"],
        ["model@model_a=mnist_expert", "~figures.grid_scale", "dataset.classes=[3,5]", "model_a.layer=x"],
    ],
)
def test_composing_in_two_steps_gives_what_hydra_composes(overrides):
    """The shared group-choice step plus the key overrides equals one call of Hydra's compose."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        expected = compose(config_name="compare", overrides=overrides, return_hydra_config=True)
        got, problems = compose_job(CONF, "compare", overrides)
    assert problems == []
    for cfg in (expected, got):  # what Hydra records about the call itself
        del cfg.hydra.overrides, cfg.hydra.runtime, cfg.hydra.job
    assert OmegaConf.to_container(got) == OmegaConf.to_container(expected)


def test_a_config_defined_in_a_doc_is_composed_with_it(tmp_path):
    doc = (
        "```yaml\n# conf/model/my_made_up_model.yaml\nlabel: mine\nkind: torchvision\nname: resnet18\n```\n"
        "Then `rdx-compare model@model_a=my_made_up_model`.\n"
    )
    (command,) = read_commands("docs/own.md", doc)
    assert compose_errors(command) != []  # not in conf/
    shutil.copytree(CONF, tmp_path / "conf")
    for relative, content in defined_configs(doc).items():
        (tmp_path / relative).write_text(content, encoding="utf-8")
    assert compose_errors(command, tmp_path / "conf") == []
