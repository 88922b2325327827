"""`--model auto`: a folder of mixed survey files, each file run by its own member's model.

A thin router over the ordinary run. The inputs are resolved once (resolve_inputs), each file
is given to the family member that reads it (`readers.sniff_kinds`, from names and headers
only; a file it cannot tell goes to BOSS Net, whose reader then reads it or makes a failed
row; an mwm file, which holds BOSS and APOGEE spectra, goes to each of those members that is
installed), and each member's group is one ordinary `stream` run with the same RunOptions. The
result is one table per member, as DR19's astraAll* files hold one HDU per instrument.

Which model serves a member: the installed models (`models pull`, model/home.py) are looked at
in the registry's order (`boss` before `boss-2023-05`), then by name; the first whose metadata
names the member serves it. BOSS Net falls back to the bundled demo model (with its
DemoModelWarning). A member with no installed model does not stop the run: each of its files
is a failed row (result_flags bit 0) whose error names the model to pull.

Written out (`predict_mixed_to_file`): FITS holds one table HDU per member (EXTNAME BOSSNET,
APOGEENET, GAIARVSNET, GAIAXPNET) in one file; other types hold one file per member, named
from -o (`cat.csv` -> `cat.boss.csv`, `cat.apogee.csv`, ...). Every file is written atomically
at the end, under the one lock of -o. There are no checkpoints and no --resume for a mixed
run: an interrupted run writes nothing and is run again.
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

from .. import __version__
from ..errors import BossNetError, ModelError, OutputPathError
from ..outputs.catalogue import Result, build_table, member_output_path, write_catalogues
from ..science.members import DEFAULT_MEMBER, MEMBERS
from .lock import OutputLock
from .options import RunOptions, options_from
from .output_paths import check_output
from .rows import failure_row
from .stream import StageTimes, check_run, open_for_run, resolve_inputs, run_metadata, stream
from .stream import predict as stream_predict

if TYPE_CHECKING:
    from astropy.table import Table

    from ..model.session import BossNetModel

__all__ = ["AUTO", "predict", "member_models", "route", "predict_mixed", "predict_mixed_to_file",
           "pull_hint"]

#: The --model value that routes each file to its member's installed model.
AUTO = "auto"


def _registry_names() -> dict[str, list[str]]:
    """Published model names per member, in the registry's order (the preferred one first)."""
    from ..model.registry import load_registry

    names: dict[str, list[str]] = {}
    try:
        for entry in load_registry().models:
            names.setdefault(entry.member, []).append(entry.name)
    except BossNetError:  # a broken registry override: installed names still work
        pass
    return names


def pull_hint(member: str) -> str:
    """The command that installs a model of `member` (`bossnet-onnx models pull apogee`)."""
    names = _registry_names().get(member) or [member]
    return f"bossnet-onnx models pull {names[0]}"


def member_models(home: Path | None = None) -> dict[str, Path | None]:
    """The model file serving each member (None: none installed; BOSS: the bundled demo)."""
    import json

    from ..model.content import read_metadata_props
    from ..model.files import default_model_path
    from ..model.home import installed_models
    from ..model.metadata import PREFIX

    installed = installed_models(home)
    preferred = [n for names in _registry_names().values() for n in names if n in installed]
    chosen: dict[str, Path | None] = dict.fromkeys(MEMBERS)
    for name in dict.fromkeys([*preferred, *sorted(installed)]):
        try:
            member = json.loads(read_metadata_props(installed[name])[PREFIX + "member"])
        except (BossNetError, KeyError, ValueError, OSError):
            continue  # not a usable model: never chosen (loading it by name says why)
        if member in chosen and chosen[member] is None:
            chosen[member] = installed[name]
    if chosen[DEFAULT_MEMBER] is None:
        chosen[DEFAULT_MEMBER] = default_model_path()
    return chosen


def _kinds_to_members() -> dict[str, str]:
    return {m.spectrum_kind: m.name for m in MEMBERS.values()}


def route(items: Sequence, available: Iterable[str]) -> dict[str, list]:
    """The items of each member, in input order; members in the family's order.

    A file certainly of one kind goes to that kind's member; of several kinds (mwm) to each
    of them that is `available`, else to the first; of none known (unsure) to BOSS Net.
    In-memory records go by their own `kind`.
    """
    from ..readers import sniff_kinds

    by_kind = _kinds_to_members()
    available = set(available)
    groups: dict[str, list] = {name: [] for name in MEMBERS}
    for item in items:
        if not isinstance(item, str):  # in-memory records: each by its own kind
            split: dict[str, list] = {}
            for record in item:
                kind = getattr(record, "kind", None) or getattr(record.spectrum, "kind", "")
                split.setdefault(by_kind.get(str(kind), DEFAULT_MEMBER), []).append(record)
            for member, records in split.items():
                groups[member].append(tuple(records))
            continue
        members = [by_kind[k] for k in sorted(sniff_kinds(item) or ()) if k in by_kind]
        if not members:
            members = [DEFAULT_MEMBER]
        elif len(members) > 1:
            members = [m for m in members if m in available] or members[:1]
        for member in members:
            groups[member].append(item)
    return {name: group for name, group in groups.items() if group}


def _member_options(options: RunOptions, member: str) -> RunOptions:
    """The run's options for one member: a recipe the member does not define (astra, DR19's
    BOSS Net code) becomes its own reference recipe (the table's RECIPE key says which)."""
    recipes = MEMBERS[member].recipes
    return options if options.recipe in recipes else options.replace(recipe=recipes[0])


def _missing_meta(member: str, options: RunOptions) -> dict[str, Any]:
    """Provenance of a table whose member has no installed model (its rows are all failed)."""
    return {"MODEL": "none", "PROVNC": "no model installed", "PROVIDER": "none",
            "ENGINE": "none", "PRECISN": options.precision, "NDRAWS": options.draws,
            "SEED": options.seed, "BNVERS": __version__, "RECIPE": options.recipe,
            "MEMBER": member, "DATE": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())}


def _missing_rows(items: Sequence, member: str) -> list[Result]:
    """The failed rows of a member with no installed model: one per file (per record for
    spectra in memory), each naming the model to pull."""
    text = (f"holds {MEMBERS[member].reads}, read by {MEMBERS[member].title} (member {member}), "
            f"and no model of that member is installed; install one with "
            f"`{pull_hint(member)}`")
    records = [r for item in items for r in ([item] if isinstance(item, str) else item)]
    return [failure_row(r, f"{r if isinstance(r, str) else r.location}: {text}")
            for r in records]


class _Plan:
    """Routed items with each member's opened model (None: no model installed); every check
    made before any spectrum is read."""

    def __init__(self, items: Sequence, options: RunOptions, times: StageTimes | None):
        self.options = options
        files = member_models()
        available = [m for m, path in files.items() if path is not None]
        self.groups = route(items, available)
        self.models: dict[str, BossNetModel | None] = {}
        try:
            for member in self.groups:
                path = files[member]
                opened = None if path is None else open_for_run(path, options, times)
                self.models[member] = opened
                if opened is not None:
                    got = opened.metadata.family_member.name
                    if got != member:  # member_models read the same key: a changed file
                        raise ModelError(f"{path}: is a {got} model, expected {member}")
                    check_run(opened, self.groups[member], _member_options(options, member))
        except BaseException:
            self.close()
            raise

    def tables(self, times: StageTimes | None, meta: Mapping[str, Any] | None = None
               ) -> dict[str, Table]:
        tables: dict[str, Table] = {}
        for member, items in self.groups.items():
            model = self.models[member]
            options = _member_options(self.options, member)
            if model is None:
                results = _missing_rows(items, member)
                header = _missing_meta(member, options)
            else:
                results = list(stream(model, items, options, times=times, checked=True))
                header = run_metadata(model, options)
            tables[member] = build_table(results, meta={**header, **(meta or {})})
        return tables

    def close(self) -> None:
        for model in self.models.values():
            if model is not None:
                model.close()


@overload
def predict(inputs: Any, *, model: Literal["auto"], options: RunOptions | None = None,
            times: StageTimes | None = None, **settings: Any) -> dict[str, Table]: ...


@overload
def predict(inputs: Any, *, model: str | os.PathLike | BossNetModel | None = None,
            options: RunOptions | None = None, times: StageTimes | None = None,
            **settings: Any) -> Table: ...


def predict(inputs: Any, *, model: str | os.PathLike | BossNetModel | None = None,
            options: RunOptions | None = None, times: StageTimes | None = None,
            **settings: Any) -> Table | dict[str, Table]:
    """`bossnet_onnx.predict`: labels for every spectrum in `inputs`.

    With one model (a name, an .onnx path, a loaded model, None for the default) this is
    `run.stream.predict`, whose docstring says what `inputs`, `options` and the keyword
    `settings` take; it returns one Table. `model="auto"` (a mixed folder) sends each file to
    the installed model of the family member that reads it and returns {member: Table}, e.g.
    {"boss": ..., "apogee": ...} (`predict_mixed`).
    """
    if isinstance(model, str) and model == AUTO:
        return predict_mixed(inputs, options, times=times, **settings)
    return stream_predict(inputs, model=model, options=options, times=times, **settings)


def predict_mixed(inputs: Any, options: RunOptions | None = None, *,
                  times: StageTimes | None = None, **settings: Any) -> dict[str, Table]:
    """`predict(inputs, model="auto")`: {member: Table} for the members whose files are in
    `inputs` (boss, apogee, gaia-rvs, gaia-xp, in that order)."""
    options = options_from(options, settings)
    plan = _Plan(resolve_inputs(inputs, options), options, times)
    try:
        return plan.tables(times)
    finally:
        plan.close()


def predict_mixed_to_file(inputs: Any, output: str | os.PathLike,
                          options: RunOptions | None = None, *, overwrite: bool = False,
                          times: StageTimes | None = None, **settings: Any) -> dict[str, Table]:
    """`predict --model auto -o OUTPUT`: the tables of `predict_mixed`, written to OUTPUT
    (FITS: one HDU per member) or beside it (other types: one file per member, named by
    `member_output_path`). Every path is checked before any work; returns {member: Table}."""
    from .sharding import parse_shard, select_shard
    from .to_file import file_inputs, run_keys

    options = options_from(options, settings)
    output = Path(output)
    check_output(output, overwrite=overwrite)
    with OutputLock(output):
        own = [output, *(member_output_path(output, m) for m in MEMBERS)]
        all_paths = file_inputs(inputs, options, own)
        paths = select_shard(all_paths, parse_shard(options.shard) if options.shard else None)
        plan = _Plan(paths, options, times)
        try:
            targets = _targets(output, plan.groups)
            for target in targets.values():
                if target != output:
                    check_output(target, overwrite=overwrite)
            tables = plan.tables(times, meta=run_keys(all_paths, options))
        finally:
            plan.close()
        t0 = time.perf_counter()
        write_catalogues(tables, output)
        if times is not None:
            times.write += time.perf_counter() - t0
    return tables


def _targets(output: Path, groups: Mapping[str, list]) -> dict[str, Path]:
    from ..outputs.catalogue import format_for

    if format_for(output) == "fits":
        return dict.fromkeys(groups, output)
    targets = {member: member_output_path(output, member) for member in groups}
    if output in targets.values():  # pragma: no cover - member_output_path always renames
        raise OutputPathError(f"{output}: per-member outputs must differ from -o")
    return targets
