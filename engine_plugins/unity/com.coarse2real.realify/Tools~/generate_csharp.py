"""Generate the package's C# wire-contract code from proto/: `python generate_csharp.py`.

Unity cannot run protoc while it imports a package, so the generated messages are committed
in Runtime/Protocol/ (like the Python client's c2r.v1). Needs a protoc with the C# generator:
the `protoc-exe` PyPI package (protoc 22) or any protoc on PATH. grpcio-tools' protoc is NOT
enough: it only carries the Python generators. gRPC stubs come from Grpc.Tools'
grpc_csharp_plugin; pass its path with --grpc-plugin to generate them too (the package's
hand-written Coarse2RealMethods.cs is what it uses when they are absent).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]
PROTO_ROOT = PACKAGE.parents[2] / "proto"
PROTO = Path("c2r") / "v1" / "coarse2real.proto"
OUTPUT = PACKAGE / "Runtime" / "Protocol"


def find_protoc() -> str:
    """protoc beside this Python (protoc-exe installs it there), else on PATH."""
    beside = Path(sys.executable).parent / ("protoc.exe" if os.name == "nt" else "protoc")
    found = str(beside) if beside.exists() else shutil.which("protoc")
    if found is None:
        raise SystemExit("no protoc with C# support found: `pip install protoc-exe` or install protoc (e.g. apt-get install protobuf-compiler)")
    return found


def well_known_protos() -> Path:
    """google/protobuf/descriptor.proto (the proto's `knob` option extends it): protoc-exe ships
    no include folder, so take grpcio-tools' copy (the dev extra installs it)."""
    try:
        from importlib.resources import files

        return Path(str(files("grpc_tools") / "_proto"))
    except ModuleNotFoundError:
        raise SystemExit("google/protobuf/descriptor.proto not found: `pip install grpcio-tools`") from None


def generate(out_dir: Path = OUTPUT, grpc_plugin: str | None = None) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    command = [find_protoc(), f"-I{PROTO_ROOT}", f"-I{well_known_protos()}", f"--csharp_out={out_dir}"]
    if grpc_plugin:
        command += [f"--plugin=protoc-gen-grpc={grpc_plugin}", f"--grpc_out={out_dir}", "--grpc_opt=no_server"]
    done = subprocess.run(command + [str(PROTO)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"protoc failed ({done.returncode}): {' '.join(command)}\n{done.stderr}")
    return sorted(out_dir.glob("Coarse2Real*.cs"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUTPUT)
    parser.add_argument("--grpc-plugin", help="path to Grpc.Tools' grpc_csharp_plugin")
    args = parser.parse_args()
    for path in generate(args.out, args.grpc_plugin):
        print(path)
