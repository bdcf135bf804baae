"""Build the Blender extension zip: add-on code, the c2r client as a wheel, native wheels.

Blender 4.2+ installs the wheels an extension lists in its manifest into its own Python, so
the add-on imports ``c2r.client`` exactly as a script does. ``blender --command extension
build`` is not part of bpy from PyPI, so this script writes the same layout itself: the
manifest and the add-on package at the zip's root, every wheel under ``wheels/``.

    python engine_plugins/blender/build_extension.py            # downloads wheels (network)
    python engine_plugins/blender/build_extension.py --wheel-dir DIR --offline

Platforms covered: see PLATFORMS. Blender 4.2 - 4.5 embed Python 3.11, hence cp311.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
ADDON = HERE / "coarse2real"
MANIFEST = ADDON / "blender_manifest.toml"

PYTHON_VERSION = "3.11"  # Blender 4.2 - 4.5; macOS wheels: Blender needs macOS 11.2+
@dataclass(frozen=True)
class Platform:
    pip_tags: tuple[str, ...]  # pip download --platform values, newest first
    tag_prefix: str  # how this OS's wheel platform tags begin
    arches: tuple[str, ...]  # how they may end (universal2 mac wheels serve both arches)


# Blender platform name -> how to fetch and recognise its wheels.
PLATFORMS: dict[str, Platform] = {
    "linux-x64": Platform(("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"), "manylinux", ("x86_64",)),
    "windows-x64": Platform(("win_amd64",), "win", ("amd64",)),
    "macos-arm64": Platform(("macosx_11_0_arm64",), "macosx", ("arm64", "universal2")),
    "macos-x64": Platform(("macosx_11_0_x86_64",), "macosx", ("x86_64", "universal2")),
}
# The client's compiled dependencies; numpy ships inside Blender. grpcio must be at least
# the version the committed c2r.v1 stubs were generated with (coarse2real_pb2_grpc.py).
NATIVE_PACKAGES = {"grpcio": "1.85.1", "protobuf": "7.36.2", "OpenEXR": "3.5.3"}  # OpenEXR: Write Multilayer EXR
# Pure-Python wheels, one for all platforms: the health service is how the client sees that
# a daemon it started (Preferences > Start a local daemon) is ready; grpcio imports
# typing_extensions (grpc/aio/_metadata.py, grpcio's Requires-Dist typing-extensions~=4.12),
# which Blender's Python does not have and Blender installs no dependency of a wheel itself.
PURE_PACKAGES = {"grpcio-health-checking": "1.85.1", "typing-extensions": "4.16.0"}
# Files of the pure-Python client wheel, relative to the repository root -> path in the wheel.
CLIENT_SOURCES = {"client/c2r/client": "c2r/client", "proto/c2r/v1": "c2r/v1"}
CLIENT_WHEEL_NAME = "coarse2real_client"


def addon_version() -> str:
    import tomllib

    return tomllib.loads(MANIFEST.read_text())["version"]


def client_files() -> dict[str, Path]:
    """Wheel path -> source file for the client and its generated stubs (c2r itself is a namespace)."""
    files: dict[str, Path] = {}
    for source, target in CLIENT_SOURCES.items():
        path = REPO / source
        if path.is_file():
            files[target] = path
            continue
        for item in sorted(path.rglob("*")):
            if item.suffix in (".py", ".pyi") and "__pycache__" not in item.parts:
                files[f"{target}/{item.relative_to(path).as_posix()}"] = item
    return files


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_client_wheel(out_dir: Path, version: str) -> Path:
    """A py3-none-any wheel of c2r.client + c2r.v1 (no daemon, no torch)."""
    dist_info = f"{CLIENT_WHEEL_NAME}-{version}.dist-info"
    contents = {name: path.read_bytes() for name, path in client_files().items()}
    contents[f"{dist_info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {CLIENT_WHEEL_NAME}\nVersion: {version}\n"
        "Summary: coarse2real light client, bundled with the Blender extension\n"
        + "".join(f"Requires-Dist: {name}>={pin}\n" for name, pin in NATIVE_PACKAGES.items())
    ).encode()
    contents[f"{dist_info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: coarse2real-build-extension\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = [_record_line(name, data) for name, data in contents.items()] + [f"{dist_info}/RECORD,,"]
    contents[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    out_dir.mkdir(parents=True, exist_ok=True)
    wheel = out_dir / f"{CLIENT_WHEEL_NAME}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in contents.items():
            zf.writestr(name, data)
    return wheel


def _pip_download(wheel_dir: Path, requirement: str, platform_tags: tuple[str, ...], offline: bool, what: str) -> None:
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--python-version", PYTHON_VERSION, "--dest", str(wheel_dir), requirement]
    command += [arg for tag in platform_tags for arg in ("--platform", tag)]
    if offline:
        command += ["--no-index", "--find-links", str(wheel_dir)]
    if subprocess.run(command).returncode != 0:
        raise SystemExit(
            f"could not get the {requirement} wheel for {what}; run with network access, "
            f"or put the wheel in {wheel_dir} and pass --offline"
        )


def download_wheels(wheel_dir: Path, offline: bool) -> None:
    """pip download the cp311 binary wheels for every platform, and the pure ones, into wheel_dir."""
    for platform_name, platform in PLATFORMS.items():
        for name, version in NATIVE_PACKAGES.items():
            _pip_download(wheel_dir, f"{name}=={version}", platform.pip_tags, offline, platform_name)
    for name, version in PURE_PACKAGES.items():
        _pip_download(wheel_dir, f"{name}=={version}", (), offline, "all platforms")


def wheel_platforms(filename: str) -> set[str]:
    """Blender platforms a wheel file installs on, from its (possibly compound) platform tag."""
    tag = filename[: -len(".whl")].split("-")[-1]
    if tag == "any":
        return set(PLATFORMS)
    return {
        name
        for part in tag.split(".")
        for name, platform in PLATFORMS.items()
        if part.startswith(platform.tag_prefix) and part.endswith(platform.arches)
    }


def wheel_name(project: str) -> str:
    """A project's name as wheel files spell it (PEP 427: runs of -_. become _; lower case, as PyPI's wheels are)."""
    return re.sub(r"[-_.]+", "_", project).lower()


def select_wheels(wheel_dir: Path) -> list[str]:
    """The wheels in wheel_dir this build ships: the client and one per package per platform."""
    names = sorted(p.name for p in wheel_dir.glob("*.whl"))
    chosen = [n for n in names if n.startswith(f"{CLIENT_WHEEL_NAME}-")]
    for name, version in PURE_PACKAGES.items():
        pure = f"{wheel_name(name)}-{version}-py3-none-any.whl"
        if pure not in names:
            raise SystemExit(f"no {name}=={version} wheel ({pure}) in {wheel_dir}: run without --offline to download it")
        chosen.append(pure)
    for name, version in NATIVE_PACKAGES.items():
        for platform in PLATFORMS:
            candidates = [n for n in names if n.lower().startswith(f"{wheel_name(name)}-{version}-") and platform in wheel_platforms(n)]
            if not candidates:
                raise SystemExit(f"no {name}=={version} wheel for {platform} in {wheel_dir}: run without --offline to download it")
            if not set(candidates) & set(chosen):
                chosen.append(candidates[0])
    return sorted(chosen)


def manifest_with_wheels(text: str, wheels: list[str]) -> str:
    listing = "".join(f'  "./wheels/{name}",\n' for name in wheels)
    return re.sub(r"(?ms)^wheels = \[.*?^\]", f"wheels = [\n{listing}]", text, count=1)


def build(out_dir: Path, wheel_dir: Path, offline: bool, update_manifest: bool) -> Path:
    version = addon_version()
    build_client_wheel(wheel_dir, version)
    download_wheels(wheel_dir, offline)
    wheels = select_wheels(wheel_dir)
    manifest = manifest_with_wheels(MANIFEST.read_text(), wheels)
    if update_manifest:
        MANIFEST.write_text(manifest)
    out_dir.mkdir(parents=True, exist_ok=True)
    archive = out_dir / f"coarse2real-{version}.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(ADDON.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.name != MANIFEST.name:
                zf.write(path, path.relative_to(ADDON).as_posix())
        zf.writestr(MANIFEST.name, manifest)
        for name in wheels:
            zf.write(wheel_dir / name, f"wheels/{name}")
    return archive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "dist", help="where the extension zip goes")
    parser.add_argument("--wheel-dir", type=Path, default=None, help="wheel cache (default: a temporary folder)")
    parser.add_argument("--offline", action="store_true", help="take native wheels only from --wheel-dir")
    parser.add_argument("--update-manifest", action="store_true", help="write the wheel list back into blender_manifest.toml")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        wheel_dir = args.wheel_dir or Path(scratch)
        archive = build(args.out, wheel_dir, args.offline, args.update_manifest)
    print(archive)
    return 0


if __name__ == "__main__":
    sys.exit(main())
