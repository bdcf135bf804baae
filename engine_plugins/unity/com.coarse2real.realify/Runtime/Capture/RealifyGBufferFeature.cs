using UnityEngine;
using UnityEngine.Rendering;
using UnityEngine.Rendering.Universal;

namespace Coarse2Real
{
    /// <summary>
    /// URP renderer feature: for a camera with an active <see cref="GBufferCapture"/>, asks URP
    /// for its depth and normals textures and copies device depth and view-space normals
    /// into the capture's render textures after post-processing. Other cameras are untouched.
    /// Add it once to the URP renderer asset (Samples~ and the README say how). Written for
    /// URP 14 (Unity 2022.3) with the Execute API, which Unity 6 keeps in compatibility mode.
    /// </summary>
    public sealed class RealifyGBufferFeature : ScriptableRendererFeature
    {
        const string ShaderName = "Hidden/Coarse2Real/GBuffer";
        Material material;
        GBufferPass pass;

        public override void Create()
        {
            pass = new GBufferPass { renderPassEvent = RenderPassEvent.AfterRenderingPostProcessing };
        }

        public override void AddRenderPasses(ScriptableRenderer renderer, ref RenderingData renderingData)
        {
            GBufferCapture capture = GBufferCapture.ActiveFor(renderingData.cameraData.camera);
            if (capture == null)
            {
                return;
            }
            if (material == null)
            {
                Shader shader = Shader.Find(ShaderName);
                if (shader == null)
                {
                    Debug.LogError($"Coarse2Real: shader {ShaderName} is missing; reimport the com.coarse2real.realify package");
                    return;
                }
                material = CoreUtils.CreateEngineMaterial(shader);
            }
            pass.ConfigureInput(ScriptableRenderPassInput.Depth | ScriptableRenderPassInput.Normal);
            pass.Setup(capture, material);
            renderer.EnqueuePass(pass);
        }

        protected override void Dispose(bool disposing) => CoreUtils.Destroy(material);

        sealed class GBufferPass : ScriptableRenderPass
        {
            GBufferCapture capture;
            Material material;

            public void Setup(GBufferCapture target, Material gbufferMaterial)
            {
                capture = target;
                material = gbufferMaterial;
            }

            public override void Execute(ScriptableRenderContext context, ref RenderingData renderingData)
            {
                CommandBuffer cmd = CommandBufferPool.Get("Coarse2Real G-buffer");
                cmd.SetRenderTarget(capture.DepthTarget);
                cmd.DrawProcedural(Matrix4x4.identity, material, 0, MeshTopology.Triangles, 3);
                cmd.SetRenderTarget(capture.NormalsTarget);
                cmd.DrawProcedural(Matrix4x4.identity, material, 1, MeshTopology.Triangles, 3);
                context.ExecuteCommandBuffer(cmd);
                CommandBufferPool.Release(cmd);
            }
        }
    }
}
