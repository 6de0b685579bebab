"""Configuration: schema validation with defaults, FOV and channel resolution.

Every function raises :class:`ConfigError` (a :class:`ValueError`) with one
readable message that names the offending key, the value received, what is
valid and how to fix it, so the workflow stops while it is parsed, before any
job runs (algorithms.md §1.3).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "ALGORITHM_SECTIONS",
    "ConfigError",
    "check_yaml_file",
    "load_schema",
    "parse_fovs",
    "resolve_channel",
    "resolve_channels",
    "validate_config",
]

#: The sections recorded under ``params`` in the manifest, in document order.
ALGORITHM_SECTIONS: tuple[str, ...] = (
    "ingest",
    "segmentation",
    "background",
    "tracking",
    "extraction",
    "qc",
)

_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


class ConfigError(ValueError):
    """A configuration value is invalid; the message says which and how to fix it."""


def load_schema(path: str | Path) -> dict[str, Any]:
    """Load the JSON schema of the configuration from a YAML file.

    Parameters
    ----------
    path : str or Path
        Path of ``config.schema.yaml``.

    Returns
    -------
    dict
        The schema.
    """
    import yaml

    with open(path, encoding="utf-8") as fh:
        schema: dict[str, Any] = yaml.safe_load(fh)
    return schema


def _resolve_ref(
    schema: Mapping[str, Any], root: Mapping[str, Any]
) -> Mapping[str, Any]:
    ref = schema.get("$ref")
    if not isinstance(ref, str):
        return schema
    node: Any = root
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    merged = dict(node)
    merged.update({k: v for k, v in schema.items() if k != "$ref"})
    return merged


def _fill_defaults(
    instance: dict[str, Any], schema: Mapping[str, Any], root: Mapping[str, Any]
) -> None:
    """Set missing keys of ``instance`` to their schema defaults, recursively."""
    for key, sub in schema.get("properties", {}).items():
        sub = _resolve_ref(sub, root)
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        value = instance.get(key)
        if isinstance(value, dict) and sub.get("type") == "object":
            _fill_defaults(value, sub, root)


def _types(schema: Mapping[str, Any], root: Mapping[str, Any]) -> set[str]:
    schema = _resolve_ref(schema, root)
    kinds = schema.get("type", [])
    found = {kinds} if isinstance(kinds, str) else set(kinds)
    for key in ("oneOf", "anyOf"):
        for sub in schema.get(key, []):
            found |= _types(sub, root)
    return found


def _scalar(text: str, kinds: set[str]) -> Any:
    """Parse a string from ``--config`` into the scalar type the schema wants."""
    lowered = text.strip().lower()
    if "null" in kinds and lowered in {"null", "none", "~"}:
        return None
    if "boolean" in kinds and lowered in {"true", "false"}:
        return lowered == "true"
    if "integer" in kinds and re.fullmatch(r"[+-]?\d+", text.strip()):
        return int(text)
    if "number" in kinds:
        try:
            return float(text)
        except ValueError:
            return text
    return text


def _coerce(value: Any, schema: Mapping[str, Any], root: Mapping[str, Any]) -> Any:
    """Convert strings where the schema wants numbers, booleans or null.

    Snakemake's ``--config`` reads nested values (``--config
    'ingest={frame_interval_min: 2.5}'``) as strings; this makes them mean what
    they say before validation.
    """
    schema = _resolve_ref(schema, root)
    if isinstance(value, dict):
        props = schema.get("properties", {})
        return {
            k: _coerce(v, props[k], root) if k in props else v for k, v in value.items()
        }
    if isinstance(value, list):
        items = schema.get("items")
        if items is None:
            for sub in schema.get("oneOf", []):
                items = _resolve_ref(sub, root).get("items", items)
        return [_coerce(v, items, root) if items else v for v in value]
    if isinstance(value, str):
        kinds = _types(schema, root)
        if kinds and "string" not in kinds:
            return _scalar(value, kinds)
    return value


def _path(error: Any) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts) if parts else "<top level>"


def _describe(error: Any, schema: Mapping[str, Any]) -> str:
    where = _path(error)
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        section = f"section {where!r}" if where != "<top level>" else "the top level"
        return (
            f"unknown config key(s) {', '.join(repr(e) for e in extra)} in {section}; "
            f"valid keys are: {', '.join(allowed)}. Check the spelling against "
            "config/config.yaml."
        )
    description = error.schema.get("description")
    hint = f" ({description.strip()})" if isinstance(description, str) else ""
    if error.validator == "enum":
        return (
            f"config key {where!r} = {error.instance!r} is not one of "
            f"{', '.join(repr(v) for v in error.validator_value)}{hint}."
        )
    if error.validator in {"oneOf", "anyOf"}:
        return f"config key {where!r} = {error.instance!r} is not valid{hint}."
    return f"config key {where!r} = {error.instance!r}: {error.message}{hint}."


def _ordered(instance: dict[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``instance`` with keys in the schema's order (the document's order)."""
    props = schema.get("properties", {})
    out: dict[str, Any] = {}
    for key in props:
        if key in instance:
            value = instance[key]
            sub = props[key]
            out[key] = (
                _ordered(value, sub)
                if isinstance(value, dict) and sub.get("type") == "object"
                else value
            )
    return out


def validate_config(
    config: Mapping[str, Any], schema: Mapping[str, Any]
) -> dict[str, Any]:
    """Validate a configuration against the schema and fill in defaults.

    Parameters
    ----------
    config : mapping
        The user's configuration (from ``config.yaml`` and ``--config``).
    schema : mapping
        The JSON schema (``workflow/schemas/config.schema.yaml``).

    Returns
    -------
    dict
        A deep copy of ``config`` with every default set.

    Raises
    ------
    ConfigError
        On the first problem found, naming the key and the valid values.
    """
    import jsonschema

    instance = copy.deepcopy(dict(config))
    channels = instance.get("channels")
    if isinstance(channels, dict):
        fl = channels.get("fl")
        # one fluorescence channel may be given like pc, without a list
        if isinstance(fl, str | int) and not isinstance(fl, bool):
            channels["fl"] = [fl]
    instance = _coerce(instance, schema, schema)
    _fill_defaults(instance, schema, schema)
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(
        validator.iter_errors(instance),
        key=lambda e: (len(list(e.absolute_path)), list(map(str, e.absolute_path))),
    )
    if errors:
        raise ConfigError(_describe(errors[0], schema))
    instance = _ordered(instance, schema)
    ingest = instance.get("ingest", {})
    if ingest.get("dtype_policy") == "scale" and ingest.get("scale_factor") is None:
        raise ConfigError(
            "config key 'ingest.dtype_policy' is 'scale' but 'ingest.scale_factor' is "
            "not set: give the factor that maps input values to uint16 counts."
        )
    _check_segmentation(instance.get("segmentation", {}))
    diameters = instance.get("qc", {}).get("cell_diameter_px")
    if (
        isinstance(diameters, list)
        and len(diameters) == 2
        and diameters[0] > diameters[1]
    ):
        raise ConfigError(
            f"config key 'qc.cell_diameter_px' = {diameters!r} must be [min, max] "
            "with min <= max; swap the two values."
        )
    if not instance.get("input") and not instance.get("samples"):
        raise ConfigError(
            "config key 'input' is not set: give the microscopy file, e.g. "
            "snakemake --cores 2 --config input=path/to/file.nd2"
        )
    return instance


def _check_segmentation(section: Mapping[str, Any]) -> None:
    """Build every segmentation method's options once (the semantic pass)."""
    from pyama_steps.segmentation import check_segmentation_options

    try:
        check_segmentation_options(section)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"config key {e}.") from None


def check_yaml_file(path: str | Path) -> None:
    """Check that a configuration file is valid YAML, naming the line if not.

    Parameters
    ----------
    path : str or Path
        The YAML file.

    Raises
    ------
    ConfigError
        With the file, the line and column, and what the parser expected;
        Snakemake's own message names neither the file nor the line.
    """
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            yaml.safe_load(fh)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = " ".join(str(x) for x in (e.context, e.problem) if x)
        raise ConfigError(
            f"{path}{where} is not valid YAML ({what}); fix that line or the one "
            "before it (an unclosed bracket or quote, a tab, a missing ': ')."
        ) from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML ({e}).") from None


def parse_fovs(spec: Any, n_fov: int) -> list[int]:
    """Resolve the ``fovs`` key against the number of scenes in the file.

    Parameters
    ----------
    spec : {'all'} or int or str or list
        ``"all"``, an index, an inclusive range ``"a-b"``, or a list of both.
    n_fov : int
        Number of scenes (FOVs) in the input file.

    Returns
    -------
    list of int
        Sorted FOV indices without duplicates.

    Raises
    ------
    ConfigError
        For a malformed entry, an empty selection or an index outside
        ``[0, n_fov)``.
    """
    if spec == "all" or spec is None:
        return list(range(n_fov))
    items = spec if isinstance(spec, list) else [spec]
    chosen: set[int] = set()
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int | str):
            raise ConfigError(
                f"config key 'fovs' has the entry {item!r}: use 'all', an index, a "
                "range 'a-b' or a list of those."
            )
        if isinstance(item, int):
            lo = hi = item
        else:
            match = _RANGE.match(item)
            if match is None:
                raise ConfigError(
                    f"config key 'fovs' has the entry {item!r}: use 'all', an index, "
                    "a range 'a-b' or a list of those."
                )
            lo = int(match.group(1))
            hi = int(match.group(2)) if match.group(2) is not None else lo
            if hi < lo:
                raise ConfigError(
                    f"config key 'fovs' has the range {item!r} whose end is before "
                    "its start; write it as 'low-high'."
                )
        if lo < 0 or hi >= n_fov:
            raise ConfigError(
                f"config key 'fovs' selects FOV {hi if hi >= n_fov else lo} but the "
                f"file has {n_fov} FOV(s) (scenes); valid indices are 0-{n_fov - 1}."
            )
        chosen.update(range(lo, hi + 1))
    return sorted(chosen)


def _channel_list(names: Sequence[str]) -> str:
    return ", ".join(f"{i}: {n!r}" for i, n in enumerate(names))


def resolve_channel(spec: int | str, names: Sequence[str], *, key: str) -> int:
    """Resolve one channel given by index or by name.

    Parameters
    ----------
    spec : int or str
        A 0-based index on the C axis or a channel name. A name must match one
        channel exactly; failing that a single case-insensitive match is taken.
    names : sequence of str
        The file's channel names, in C order.
    key : str
        The config key, for the error message.

    Returns
    -------
    int
        The channel index.

    Raises
    ------
    ConfigError
        If the index is out of range or the name matches no or several channels;
        the message lists every ``index: name`` pair.
    """
    n = len(names)
    if isinstance(spec, bool) or not isinstance(spec, int | str):
        raise ConfigError(
            f"config key {key!r} = {spec!r} must be a channel index or name; the "
            f"file's channels are {_channel_list(names)}."
        )
    if isinstance(spec, int):
        if not 0 <= spec < n:
            raise ConfigError(
                f"config key {key!r} = {spec} is not a channel of the file; valid "
                f"channels are {_channel_list(names)}."
            )
        return spec
    exact = [i for i, name in enumerate(names) if name == spec]
    if len(exact) == 1:
        return exact[0]
    if not exact:
        folded = [
            i for i, name in enumerate(names) if name.casefold() == spec.casefold()
        ]
        if len(folded) == 1:
            return folded[0]
        exact = folded
    if not exact and spec.strip().isdigit():
        # `--config channels='{pc: 1}'` arrives as the string "1"
        return resolve_channel(int(spec), names, key=key)
    reason = "matches several channels" if exact else "matches no channel"
    raise ConfigError(
        f"config key {key!r} = {spec!r} {reason}; the file's channels are "
        f"{_channel_list(names)}. Give the channel by index instead."
    )


def resolve_channels(
    pc: int | str, fl: Sequence[int | str] | None, names: Sequence[str]
) -> tuple[int, list[int]]:
    """Resolve the phase-contrast and fluorescence channels.

    Parameters
    ----------
    pc : int or str
        ``channels.pc``.
    fl : sequence of int or str, or None
        ``channels.fl``; ``None`` means every channel except ``pc``.
    names : sequence of str
        The file's channel names.

    Returns
    -------
    pc : int
        Phase-contrast channel index.
    fl : list of int
        Fluorescence channel indices, ascending (algorithms.md §0).

    Raises
    ------
    ConfigError
        For an unknown channel or a fluorescence channel listed twice.
    """
    pc_index = resolve_channel(pc, names, key="channels.pc")
    if fl is None:
        return pc_index, [c for c in range(len(names)) if c != pc_index]
    resolved = [resolve_channel(c, names, key="channels.fl") for c in fl]
    seen: set[int] = set()
    for spec, c in zip(fl, resolved, strict=True):
        if c in seen:
            raise ConfigError(
                f"config key 'channels.fl' lists channel {c} ({spec!r}) twice; "
                "list each fluorescence channel once."
            )
        seen.add(c)
    return pc_index, sorted(resolved)
