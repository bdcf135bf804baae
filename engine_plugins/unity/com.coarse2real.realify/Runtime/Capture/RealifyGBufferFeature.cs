using Coarse2Real.Core;
using UnityEngine;
using UnityEngine.Rendering;
using UnityEngine.Rendering.Universal;
#if C2R_URP_RENDER_GRAPH
using UnityEngine.Rendering.RenderGraphModule;
#endif

namespace Coarse2Real
{
    /// <summary>
    /// URP renderer feature: for a camera with an active <see cref="GBufferCapture"/>, asks URP for its
    /// depth and normals textures and copies device depth and view-space normals into the capture's
    /// render textures after post-processing. Other cameras are untouched. Add it once to the URP
    /// renderer asset. Two paths, one pass:
    /// <list type="bullet">
    /// <item>Render Graph (URP 17 / Unity 6, on by default): <c>RecordRenderGraph</c> adds two raster passes
    /// reading <c>UniversalResourceData.cameraDepthTexture</c> / <c>cameraNormalsTexture</c> and writing the
    /// capture's textures imported with <c>RenderGraph.ImportTexture</c> (URP 17 manual, "Write a render pass
    /// using the render graph system"; SRP Core 17 "Import a texture into the render graph system").
    /// C2R_URP_RENDER_GRAPH is defined by the Runtime asmdef's versionDefines for URP &gt;= 17.0.0.</item>
    /// <item>Compatibility (URP 14, or URP 17 with Render Graph off): <c>Execute</c> with a command buffer.</item>
    /// </list>
    /// The shader is a serialized reference, so it is part of the renderer asset and of player builds
    /// (a shader found only by Shader.Find is stripped from a build unless it is listed in Always
    /// Included Shaders or lives in Resources).
    /// </summary>
    public sealed class RealifyGBufferFeature : ScriptableRendererFeature
    {
        public const string ShaderName = "Hidden/Coarse2Real/GBuffer";

        [SerializeField] Shader shader;
        Material material;
        GBufferPass pass;

        public Shader Shader => shader;

        public override void Create()
        {
#if UNITY_EDITOR
            if (shader == null)
            {
                shader = Shader.Find(ShaderName); // the editor has every shader; the reference is then saved with the asset
            }
#endif
            pass = new GBufferPass { renderPassEvent = RenderPassEvent.AfterRenderingPostProcessing };
        }

        public override void AddRenderPasses(ScriptableRenderer renderer, ref RenderingData renderingData)
        {
            GBufferCapture capture = GBufferCapture.ActiveFor(renderingData.cameraData.camera);
            if (capture == null)
            {
                return;
            }
            if (shader == null)
            {
                Debug.LogError($"Coarse2Real: RealifyGBufferFeature has no shader: select the URP renderer asset and set its Shader to {ShaderName} (or remove and re-add the feature)");
                return;
            }
            if (material == null)
            {
                material = CoreUtils.CreateEngineMaterial(shader);
            }
            bool flip = CaptureOrientation.FlipSampleY(SystemInfo.graphicsUVStartsAtTop, renderingData.cameraData.IsCameraProjectionMatrixFlipped());
            pass.ConfigureInput(ScriptableRenderPassInput.Depth | ScriptableRenderPassInput.Normal);
            pass.Setup(capture, material, flip);
            renderer.EnqueuePass(pass);
        }

        protected override void Dispose(bool disposing) => CoreUtils.Destroy(material);

        sealed class GBufferPass : ScriptableRenderPass
        {
            static readonly int FlipId = Shader.PropertyToID("_C2RFlipY");
            GBufferCapture capture;
            Material material;
            float flip;

            public void Setup(GBufferCapture target, Material gbufferMaterial, bool flipY)
            {
                capture = target;
                material = gbufferMaterial;
                flip = flipY ? 1f : 0f;
            }

#pragma warning disable 618, 672 // Execute is the compatibility path; URP 17 marks it obsolete in favour of RecordRenderGraph
            public override void Execute(ScriptableRenderContext context, ref RenderingData renderingData)
            {
                CommandBuffer cmd = CommandBufferPool.Get("Coarse2Real G-buffer");
                cmd.SetGlobalFloat(FlipId, flip);
                cmd.SetRenderTarget(capture.DepthTarget);
                cmd.DrawProcedural(Matrix4x4.identity, material, 0, MeshTopology.Triangles, 3);
                cmd.SetRenderTarget(capture.NormalsTarget);
                cmd.DrawProcedural(Matrix4x4.identity, material, 1, MeshTopology.Triangles, 3);
                context.ExecuteCommandBuffer(cmd);
                CommandBufferPool.Release(cmd);
            }
#pragma warning restore 618, 672

#if C2R_URP_RENDER_GRAPH
            static readonly int DepthId = Shader.PropertyToID("_CameraDepthTexture");
            static readonly int NormalsId = Shader.PropertyToID("_CameraNormalsTexture");

            sealed class PassData
            {
                public Material Material;
                public int ShaderPass;
                public float Flip;
                public TextureHandle Depth;
                public TextureHandle Normals;
                public MaterialPropertyBlock Properties;
            }

            public override void RecordRenderGraph(RenderGraph renderGraph, ContextContainer frameData)
            {
                UniversalResourceData resources = frameData.Get<UniversalResourceData>();
                AddCopy(renderGraph, "Coarse2Real depth", 0, resources, renderGraph.ImportTexture(capture.DepthHandle));
                AddCopy(renderGraph, "Coarse2Real normals", 1, resources, renderGraph.ImportTexture(capture.NormalsHandle));
            }

            void AddCopy(RenderGraph renderGraph, string name, int shaderPass, UniversalResourceData resources, TextureHandle target)
            {
                PassData data;
                using (IRasterRenderGraphBuilder builder = renderGraph.AddRasterRenderPass<PassData>(name, out data))
                {
                    data.Material = material;
                    data.ShaderPass = shaderPass;
                    data.Flip = flip;
                    data.Depth = resources.cameraDepthTexture;
                    data.Normals = resources.cameraNormalsTexture;
                    data.Properties = new MaterialPropertyBlock();
                    builder.UseTexture(data.Depth);
                    builder.UseTexture(data.Normals);
                    builder.SetRenderAttachment(target, 0);
                    builder.AllowPassCulling(false); // its output leaves the graph (an imported texture read back later)
                    builder.SetRenderFunc((PassData pass, RasterGraphContext context) => Draw(pass, context.cmd));
                }
            }

            static void Draw(PassData pass, RasterCommandBuffer cmd)
            {
                pass.Properties.SetFloat(FlipId, pass.Flip);
                pass.Properties.SetTexture(DepthId, pass.Depth);
                pass.Properties.SetTexture(NormalsId, pass.Normals);
                cmd.DrawProcedural(Matrix4x4.identity, pass.Material, pass.ShaderPass, MeshTopology.Triangles, 3, 1, pass.Properties);
            }
#endif
        }
    }
}
