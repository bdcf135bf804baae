"""Command-line options shared by `c2r realify`, `c2r jobs submit`, `c2r info` and `c2r preview`.

The realify options are the session knobs of the wire contract (``config.KNOBS``): one
`--name` per knob, typed and explained by its SessionConfig field.
"""

from __future__ import annotations

import argparse
import os

from google.protobuf.descriptor import FieldDescriptor

from .config import KNOBS, knob_help
from .transport import DEFAULT_ADDRESS

_TYPES = {
    FieldDescriptor.CPPTYPE_STRING: str,
    FieldDescriptor.CPPTYPE_FLOAT: float,
    FieldDescriptor.CPPTYPE_DOUBLE: float,
    FieldDescriptor.CPPTYPE_INT32: int,
    FieldDescriptor.CPPTYPE_INT64: int,
    FieldDescriptor.CPPTYPE_UINT32: int,
    FieldDescriptor.CPPTYPE_UINT64: int,
}


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", default=os.environ.get("C2R_ADDRESS", DEFAULT_ADDRESS),
                        help=f"daemon HOST:PORT (default: $C2R_ADDRESS or {DEFAULT_ADDRESS})")
    parser.add_argument("--token", default=os.environ.get("C2R_TOKEN"),
                        help="bearer token of a daemon started with --token (default: $C2R_TOKEN)")


def _option(field: FieldDescriptor) -> dict:
    if field.cpp_type == FieldDescriptor.CPPTYPE_BOOL:
        return {"action": argparse.BooleanOptionalAction}
    if field.cpp_type == FieldDescriptor.CPPTYPE_ENUM:
        names = {v.name.lower(): v.number for v in field.enum_type.values if v.number}
        return {"type": str.lower, "choices": sorted(names)}
    return {"type": _TYPES[field.cpp_type]}


def add_realify_options(parser: argparse.ArgumentParser) -> None:
    for name, field in KNOBS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", help=knob_help(field), **_option(field))


def realify_options(args: argparse.Namespace) -> dict:
    """The parsed options as keyword arguments of Client.realify (None: the daemon's default)."""
    options = {name: getattr(args, name) for name in KNOBS}
    for name, value in options.items():
        if value is not None and KNOBS[name].cpp_type == FieldDescriptor.CPPTYPE_ENUM:
            options[name] = KNOBS[name].enum_type.values_by_name[value.upper()].number
    return options
