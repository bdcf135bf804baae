// Device depth (pass 0) and view-space normals (pass 1) of the camera being captured, copied from
// URP's depth and normals textures (the renderer feature asks URP for both and, under Render Graph,
// binds them explicitly). Full-screen triangle, no vertex buffer. View space is Unity's camera space:
// +X right, +Y up, the camera looking down -Z (the OpenGL convention the daemon expects for normals).
// Rows: the triangle is given in clip space, so its top lands in memory row 0 on D3D/Metal/Vulkan and in
// the last row on OpenGL; _C2RFlipY (set from CaptureOrientation.FlipSampleY, tested in C#) picks the
// sampling direction that keeps the copy's rows in the colour's order on every API.
Shader "Hidden/Coarse2Real/GBuffer"
{
    SubShader
    {
        Tags { "RenderPipeline" = "UniversalPipeline" }
        ZTest Always ZWrite Off Cull Off

        HLSLINCLUDE
        #include "Packages/com.unity.render-pipelines.universal/ShaderLibrary/Core.hlsl"
        #include "Packages/com.unity.render-pipelines.universal/ShaderLibrary/DeclareDepthTexture.hlsl"
        #include "Packages/com.unity.render-pipelines.universal/ShaderLibrary/DeclareNormalsTexture.hlsl"

        float _C2RFlipY;

        struct Varyings
        {
            float4 positionCS : SV_POSITION;
            float2 clip01 : TEXCOORD0; // clip-space position in [0, 1], y = 1 at the top of clip space
        };

        Varyings FullScreen(uint vertexID : SV_VertexID)
        {
            Varyings output;
            output.positionCS = GetFullScreenTriangleVertexPosition(vertexID);
            output.clip01 = output.positionCS.xy * 0.5 + 0.5;
            return output;
        }

        float2 SampleUV(Varyings input)
        {
            return float2(input.clip01.x, _C2RFlipY > 0.5 ? 1.0 - input.clip01.y : input.clip01.y);
        }
        ENDHLSL

        Pass
        {
            Name "DeviceDepth"
            HLSLPROGRAM
            #pragma vertex FullScreen
            #pragma fragment Depth
            float Depth(Varyings input) : SV_Target
            {
                // Raw device depth; DepthConversion (C#, tested) turns it into linear eye depth.
                return SampleSceneDepth(SampleUV(input));
            }
            ENDHLSL
        }

        Pass
        {
            Name "ViewNormals"
            HLSLPROGRAM
            #pragma vertex FullScreen
            #pragma fragment Normals
            half4 Normals(Varyings input) : SV_Target
            {
                float3 world = SampleSceneNormals(SampleUV(input));
                return half4(normalize(TransformWorldToViewDir(world, true)), 1.0);
            }
            ENDHLSL
        }
    }
}
