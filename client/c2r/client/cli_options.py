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


def field_option(field: FieldDescriptor) -> dict:
    """argparse keywords for one SessionConfig field: its type; a bool is --x/--no-x, an enum
    takes its value names in lower case (the UNSPECIFIED one left out)."""
    if field.cpp_type == FieldDescriptor.CPPTYPE_BOOL:
        return {"action": argparse.BooleanOptionalAction}
    if field.cpp_type == FieldDescriptor.CPPTYPE_ENUM:
        return {"type": str.lower, "choices": sorted(v.name.lower() for v in field.enum_type.values if v.number)}
    return {"type": _TYPES[field.cpp_type]}


def field_value(field: FieldDescriptor, value):
    """A parsed option as SessionConfig takes it (an enum by its number)."""
    if value is not None and field.cpp_type == FieldDescriptor.CPPTYPE_ENUM:
        return field.enum_type.values_by_name[value.upper()].number
    return value


def add_realify_options(parser: argparse.ArgumentParser) -> None:
    for name, field in KNOBS.items():
        parser.add_argument(f"--{name.replace('_', '-')}", help=knob_help(field), **field_option(field))


def realify_options(args: argparse.Namespace) -> dict:
    """The parsed options as keyword arguments of Client.realify (None: the daemon's default)."""
    return {name: field_value(field, getattr(args, name)) for name, field in KNOBS.items()}
