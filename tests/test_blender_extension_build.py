"""The Blender extension's manifest, its client wheel and its PNG writer (no bpy needed)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from c2r.client import png

tomllib = pytest.importorskip("tomllib", reason="Python 3.11+ (Blender 4.2+ embeds 3.11)")

BLENDER_DIR = Path(__file__).resolve().parents[1] / "engine_plugins" / "blender"


def load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


build = load("c2r_blender_build_extension", BLENDER_DIR / "build_extension.py")


def test_manifest_has_what_blender_requires():
    manifest = tomllib.loads(build.MANIFEST.read_text())
    assert manifest["schema_version"] == "1.0.0"
    assert manifest["id"] == "coarse2real" and manifest["type"] == "add-on"
    assert manifest["blender_version_min"] == "4.2.0"
    assert all(manifest[key] for key in ("version", "name", "tagline", "maintainer", "license"))
    assert len(manifest["tagline"]) <= 64 and not manifest["tagline"].endswith(".")  # Blender's own manifest rules
    assert set(manifest["permissions"]) == {"network", "files"}
    assert all(reason and not reason.endswith(".") for reason in manifest["permissions"].values())


def blender_extension_tool():
    """Blender's own extension CLI (the code behind `blender --command extension`), shipped inside bpy."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("bpy (Blender as a Python module) is not installed: pip install 'bpy==4.5.*' (Python 3.11)")
    found = sorted(Path(spec.submodule_search_locations[0]).glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not found:
        pytest.skip("this bpy build has no bl_pkg/cli/blender_ext.py")
    return found[-1]


def test_manifest_passes_blenders_own_strict_validation():
    tool = blender_extension_tool()
    code = (
        f"import sys; sys.path.insert(0, {str(tool.parent)!r}); import blender_ext; "
        f"r = blender_ext.pkg_manifest_from_toml_and_validate_all_errors({str(build.MANIFEST)!r}, strict=True); "
        "print(r if isinstance(r, list) else 'valid')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "valid", result.stdout


def test_manifest_wheels_cover_every_platform_for_every_native_package():
    manifest = tomllib.loads(build.MANIFEST.read_text())
    assert manifest["platforms"] == list(build.PLATFORMS)
    wheels = [Path(w).name for w in manifest["wheels"]]
    assert all(w.startswith("./wheels/") and w.endswith(".whl") for w in manifest["wheels"])
    version = manifest["version"]
    assert f"{build.CLIENT_WHEEL_NAME}-{version}-py3-none-any.whl" in wheels
    for package, pin in build.PURE_PACKAGES.items():
        assert f"{build.wheel_name(package)}-{pin}-py3-none-any.whl" in wheels
    for package, pin in build.NATIVE_PACKAGES.items():
        name = build.wheel_name(package)
        ours = [w for w in wheels if w.startswith(f"{name}-")]
        assert ours and all(w.startswith(f"{name}-{pin}-") for w in ours), f"{package} wheels must all be {pin}: {ours}"
        assert all("cp311" in w or "abi3" in w for w in ours), "Blender 4.2-4.5 run Python 3.11"
        covered = [build.wheel_platforms(w) for w in ours]
        for platform in build.PLATFORMS:
            assert sum(platform in c for c in covered) == 1, f"exactly one {package} wheel for {platform}: {ours}"


def test_wheel_platforms_reads_compound_and_universal_tags():
    assert build.wheel_platforms("grpcio-1.85.1-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl") == {"linux-x64"}
    assert build.wheel_platforms("grpcio-1.85.1-cp311-cp311-macosx_11_0_universal2.whl") == {"macos-arm64", "macos-x64"}
    assert build.wheel_platforms("protobuf-7.36.2-cp310-abi3-win_amd64.whl") == {"windows-x64"}
    assert build.wheel_platforms("grpcio-1.85.1-cp311-cp311-manylinux_2_17_aarch64.whl") == set()
    assert build.wheel_platforms("coarse2real_client-0.1.0-py3-none-any.whl") == set(build.PLATFORMS)


def test_client_wheel_imports_without_the_repository(tmp_path):
    wheel = build.build_client_wheel(tmp_path / "wheels", "0.1.0")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        record = zf.read("coarse2real_client-0.1.0.dist-info/RECORD").decode()
        zf.extractall(tmp_path / "site")
    assert {"c2r/client/__init__.py", "c2r/client/version.py", "c2r/v1/coarse2real_pb2.py"} <= names
    assert "c2r/__init__.py" not in names, "c2r is a namespace package: a c2r/__init__.py would hide the other parts"
    assert not any(n.startswith(("c2r/daemon", "c2r/models")) for n in names), "the client wheel carries no torch code"
    assert all(line.split(",")[0] in names for line in record.splitlines())
    # The unpacked wheel alone provides c2r (-I ignores PYTHONPATH, so put it on sys.path by hand).
    code = (
        f"import sys; sys.path.insert(0, {str(tmp_path / 'site')!r}); import c2r.client, c2r.v1.coarse2real_pb2 as pb; "
        "print(c2r.client.__file__); print(pb.PROTOCOL_MAJOR)"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0].startswith(str(tmp_path / "site")) and out[1] == "1"


def test_offline_build_names_the_missing_platform_wheel(tmp_path):
    build.build_client_wheel(tmp_path, "0.1.0")
    for package, pin in build.PURE_PACKAGES.items():
        (tmp_path / f"{build.wheel_name(package)}-{pin}-py3-none-any.whl").touch()
    with pytest.raises(SystemExit, match=r"no grpcio==[\d.]+ wheel for linux-x64 .*run without --offline"):
        build.select_wheels(tmp_path)


def test_manifest_rewrite_lists_exactly_the_chosen_wheels():
    wheels = ["coarse2real_client-0.1.0-py3-none-any.whl", "grpcio-1.85.1-cp311-cp311-win_amd64.whl"]
    rewritten = tomllib.loads(build.manifest_with_wheels(build.MANIFEST.read_text(), wheels))
    assert rewritten["wheels"] == [f"./wheels/{w}" for w in wheels]
    assert rewritten["permissions"] == tomllib.loads(build.MANIFEST.read_text())["permissions"]


def decode_png(data: bytes) -> np.ndarray:
    """Just enough PNG reading for 8-bit RGB with filter 0 on every row, independent of the writer."""
    assert data[:8] == png.SIGNATURE
    chunks, offset = {}, 8
    while offset < len(data):
        length = int.from_bytes(data[offset : offset + 4], "big")
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        assert zlib.crc32(kind + body) == int.from_bytes(data[offset + 8 + length : offset + 12 + length], "big")
        chunks[kind] = chunks.get(kind, b"") + body
        offset += 12 + length
    width, height = int.from_bytes(chunks[b"IHDR"][:4], "big"), int.from_bytes(chunks[b"IHDR"][4:8], "big")
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(height, 1 + width * 3)
    assert np.all(rows[:, 0] == 0)
    return rows[:, 1:].reshape(height, width, 3)


def test_png_round_trips_and_appears_only_when_complete(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    path = png.write_png(tmp_path / "out" / "0007.png", image)
    assert np.array_equal(decode_png(path.read_bytes()), image)
    assert os.listdir(path.parent) == ["0007.png"], "no temporary file is left beside the frame"
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8, got \(48, 64\) float32"):
        png.write_png(tmp_path / "bad.png", np.zeros((48, 64), np.float32))
    assert not (tmp_path / "bad.png").exists()
