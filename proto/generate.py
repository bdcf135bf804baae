"""Generate the Python code for the wire contract: `python proto/generate.py`.

The generated `*_pb2*.py` files are committed so that the light client (and Blender's,
Unreal's bundled copies) need only the protobuf and grpcio runtimes; they are never edited
by hand. `tests/test_proto.py` regenerates them and fails if the committed copy is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTOS = sorted((HERE / "c2r" / "v1").glob("*.proto"))


def well_known_protos() -> Path:
    """The folder holding google/protobuf/*.proto (coarse2real.proto imports descriptor.proto)."""
    from importlib.resources import files

    return Path(str(files("grpc_tools") / "_proto"))


def generate(out_dir: Path = HERE) -> list[Path]:
    from grpc_tools import protoc

    args = ["protoc", f"-I{HERE}", f"-I{well_known_protos()}", f"--python_out={out_dir}", f"--pyi_out={out_dir}", f"--grpc_python_out={out_dir}"]
    args += [str(p.relative_to(HERE)) for p in PROTOS]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed; see the messages above")
    return sorted((out_dir / "c2r" / "v1").glob("*_pb2*.py*"))


if __name__ == "__main__":
    for path in generate(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE):
        print(path)
