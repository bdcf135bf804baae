"""What can be verified of the Unity package without Unity or a .NET SDK.

* protoc generates the package's C# messages from proto/ cleanly, and the committed copy is
  current (grpcio-tools' own protoc has only the Python generators, so this uses the protoc of
  the `protoc-exe` package, or any protoc on PATH);
* the hand-written gRPC method descriptors name the service and calls proto/ defines;
* the engine-independent C# (Runtime/Core) compiles with Mono's mcs and its NUnit tests pass,
  where mcs and nunit-console are installed (Debian: mono-mcs, libnunit-cil-dev, nunit-console);
* the package layout: package.json, asmdefs, no UnityEngine in Core.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
from pathlib import Path

import pytest

from c2r.v1 import coarse2real_pb2 as pb
from unity_packing import mono_tools

PACKAGE = Path(__file__).resolve().parents[1] / "engine_plugins" / "unity" / "com.coarse2real.realify"


def _generator():
    spec = importlib.util.spec_from_file_location("unity_generate_csharp", PACKAGE / "Tools~" / "generate_csharp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_protoc_generates_the_committed_csharp_messages(tmp_path):
    generator = _generator()
    try:
        generator.find_protoc()
    except SystemExit as missing:
        pytest.skip(str(missing))
    [generated] = generator.generate(tmp_path)
    text = generated.read_text()
    assert "namespace C2R.V1 {" in text
    for message in ("Plane", "Frame", "SessionConfig", "ClientMessage", "ServerMessage", "ResultFrame", "InfoRequest", "InfoReply",
                    "PlanRequest", "PlanReply"):  # fmt: skip
        assert f"public sealed partial class {message} : pb::IMessage<{message}>" in text, message
    for enum, member in (("DType", "Float16 = 2"), ("DepthKind", "Distance = 1"), ("ColorSpace", "Srgb = 1"), ("Buffer", "Normals = 3")):
        assert re.search(rf"public enum {enum} {{[^}}]*{member}", text), (enum, member)
    committed = PACKAGE / "Runtime" / "Protocol" / "Coarse2Real.cs"
    assert committed.read_text() == text, "Runtime/Protocol/Coarse2Real.cs is stale: run `python engine_plugins/unity/com.coarse2real.realify/Tools~/generate_csharp.py`"


def test_the_package_asks_for_result_batches_only_once_its_reader_takes_them():
    """Protocol 1.2's ResultBatch reaches a client only if its SessionConfig says batches (and its minor is 2): the
    package asks (DefaultConfig) because RealifyStreamingSession.ReadMessagesAsync reads both kinds; it sends single
    frames (one capture at a time), which every daemon reads."""
    session = (PACKAGE / "Runtime" / "Client" / "RealifyStreamingSession.cs").read_text()
    status = (PACKAGE / "Runtime" / "Core" / "DaemonStatus.cs").read_text()
    minor = int(re.search(r"public const uint ProtocolMinor = (\d+);", status).group(1))
    reads_batches = "ServerMessage.KindOneofCase.Results" in session
    asks = re.search(r"\bBatches\s*=\s*true", session) is not None and minor >= 2
    assert "ServerMessage.KindOneofCase.Result:" in session  # single results are read (a daemon of 1.1)
    assert reads_batches or not asks, "the package asks for ResultBatch but ReadMessagesAsync does not read it"
    assert asks, "DefaultConfig no longer asks for result batches: say why in DaemonStatus.ProtocolMinor's comment"
    assert "ResultBatch" in (PACKAGE / "Runtime" / "Protocol" / "Coarse2Real.cs").read_text()  # generated from 1.2


def test_handwritten_grpc_methods_match_the_proto_service():
    source = (PACKAGE / "Runtime" / "Protocol" / "Coarse2RealMethods.cs").read_text()
    service = pb.DESCRIPTOR.services_by_name["Coarse2Real"]
    assert f'ServiceName = "{service.full_name}"' in source
    declared = re.findall(r"new Method<(\w+), (\w+)>\(\s*MethodType\.(\w+), ServiceName, \"(\w+)\"", source)
    assert declared, source
    for request, reply, kind, name in declared:
        method = service.methods_by_name[name]
        assert (method.input_type.name, method.output_type.name) == (request, reply)
        streaming = (method.client_streaming, method.server_streaming)
        assert kind == {(False, False): "Unary", (True, True): "DuplexStreaming"}[streaming], name
    assert {name for *_, name in declared} == {"GetInfo", "Plan", "Realify"}


def test_the_package_states_the_protocol_minor_of_the_proto_it_speaks():
    """Core cannot see the generated enum (it references nothing), so its constant is checked against the proto here."""
    status = (PACKAGE / "Runtime" / "Core" / "DaemonStatus.cs").read_text()
    assert f"public const uint ProtocolMinor = {pb.PROTOCOL_MINOR};" in status, (
        f"proto/ is at protocol minor {pb.PROTOCOL_MINOR}: speak what it added, then set DaemonStatus.ProtocolMinor")
    assert "public const uint PlanSinceMinor = 1;" in status  # coarse2real.proto: "PROTOCOL_MINOR = 2;  // 1: Plan; ..."
    assert "public const uint BatchesSinceMinor = 2;" in status  # "... 2: FrameBatch, ResultBatch"
    for client in ("Runtime/Client/DaemonConnection.cs", "Runtime/Client/RealifyStreamingSession.cs"):
        text = (PACKAGE / client).read_text()
        assert "ProtocolMinor = DaemonStatus.ProtocolMinor" in text and "ProtocolMinor = 0" not in text, client


def test_core_csharp_compiles_and_its_nunit_tests_pass(tmp_path):
    mcs, console = mono_tools("mcs", "nunit-console")
    libraries = Path(console).parents[1] / "lib" / "cli"  # /usr/bin/nunit-console -> /usr/lib/cli (Debian's layout, under any root)
    nunit = next(iter(sorted(libraries.glob("nunit.framework-*/nunit.framework.dll"))), None)
    assert nunit is not None, "nunit-console is installed but nunit.framework.dll is not: apt-get install libnunit-cil-dev"
    sources = sorted(str(p) for p in (PACKAGE / "Runtime" / "Core").glob("*.cs")) + sorted(str(p) for p in (PACKAGE / "Tests" / "Core").glob("*.cs"))
    dll = tmp_path / "Coarse2Real.Core.Tests.dll"
    built = subprocess.run([mcs, "-target:library", f"-out:{dll}", f"-r:{nunit}", "-warnaserror+", *sources], capture_output=True, text=True)
    assert built.returncode == 0, built.stdout + built.stderr
    ran = subprocess.run([console, "-nologo", "-noshadow", f"-work={tmp_path}", str(dll)], capture_output=True, text=True, timeout=120)
    summary = re.search(r"Tests run: (\d+), Errors: (\d+), Failures: (\d+)", ran.stdout)
    assert ran.returncode == 0 and summary, ran.stdout + ran.stderr
    run, errors, failures = map(int, summary.groups())
    assert run >= 55 and errors == 0 and failures == 0, ran.stdout


@pytest.mark.parametrize("defines", [[], ["-define:C2R_URP_RENDER_GRAPH", "-define:UNITY_EDITOR"]], ids=["urp14", "urp17-editor"])
def test_unity_facing_csharp_parses(defines):
    """Syntax only: UnityEngine, URP, Grpc.Net.Client, Google.Protobuf and YetAnotherHttpHandler cannot be had here
    (NuGet and Unity's registry are out of reach), so these files are parsed, not compiled, with both URP paths."""
    (mcs,) = mono_tools("mcs")
    files = [str(p) for folder in ("Runtime/Client", "Runtime/Capture", "Runtime/Output", "Editor", "Samples~") for p in sorted((PACKAGE / folder).rglob("*.cs"))]
    files.append(str(PACKAGE / "Runtime" / "Protocol" / "Coarse2RealMethods.cs"))
    parsed = subprocess.run([mcs, "-langversion:experimental", "--parse", *defines, *files], capture_output=True, text=True)
    assert parsed.returncode == 0, parsed.stdout + parsed.stderr


def test_the_capture_keeps_its_shader_in_player_builds_and_has_both_urp_paths():
    feature = (PACKAGE / "Runtime" / "Capture" / "RealifyGBufferFeature.cs").read_text()
    assert "[SerializeField] Shader shader;" in feature  # a reference from the renderer asset is what keeps a shader in a build
    find_calls = [line for line in feature.splitlines() if "Shader.Find(" in line]
    editor_only = feature.split("#if UNITY_EDITOR")[1].split("#endif")[0]
    assert find_calls and all(call.strip() in editor_only for call in find_calls)  # never relied on in a player
    assert "public override void RecordRenderGraph(RenderGraph renderGraph, ContextContainer frameData)" in feature
    assert "public override void Execute(ScriptableRenderContext context, ref RenderingData renderingData)" in feature
    runtime = json.loads((PACKAGE / "Runtime" / "Coarse2Real.Runtime.asmdef").read_text())
    assert {"name": "com.unity.render-pipelines.universal", "expression": "17.0.0", "define": "C2R_URP_RENDER_GRAPH"} in runtime["versionDefines"]
    shader = (PACKAGE / "Runtime" / "Shaders" / "RealifyGBuffer.shader").read_text()
    assert "_C2RFlipY" in shader and "GetFullScreenTriangleTexCoord" not in shader  # the flip is decided in tested C#


def test_package_manifest_and_assembly_definitions():
    manifest = json.loads((PACKAGE / "package.json").read_text())
    assert manifest["name"] == "com.coarse2real.realify" and re.fullmatch(r"\d+\.\d+\.\d+", manifest["version"])
    assert manifest["unity"] == "2022.3" and "com.unity.render-pipelines.universal" in manifest["dependencies"]
    for sample in manifest["samples"]:
        assert (PACKAGE / sample["path"]).is_dir()
    asmdefs = {json.loads(p.read_text())["name"]: (p, json.loads(p.read_text())) for p in PACKAGE.rglob("*.asmdef")}
    assert set(asmdefs) == {"Coarse2Real.Core", "Coarse2Real.Protocol", "Coarse2Real.Runtime", "Coarse2Real.Editor", "Coarse2Real.Core.Tests"}
    core_path, core = asmdefs["Coarse2Real.Core"]
    assert core["noEngineReferences"] is True and core["references"] == [] and core["precompiledReferences"] == []
    for source in core_path.parent.glob("*.cs"):
        assert not re.search(r"\bUnity(Engine|Editor)\b", source.read_text()), source
    assert asmdefs["Coarse2Real.Editor"][1]["includePlatforms"] == ["Editor"]
    for name, (_, asmdef) in asmdefs.items():
        for reference in asmdef["references"]:
            assert reference in asmdefs or reference.startswith(("Unity.", "Cysharp.")), (name, reference)
    for folder in ("Runtime", "Editor", "Samples~", "Documentation~"):
        assert (PACKAGE / folder).is_dir(), folder
