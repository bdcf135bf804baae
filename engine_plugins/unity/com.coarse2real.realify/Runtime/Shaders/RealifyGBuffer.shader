// Device depth (pass 0) and view-space normals (pass 1) of the camera being captured, for
// URP's depth and normals textures (the renderer feature asks URP for both). Full-screen
// triangle, no vertex buffer. View space is Unity's camera space: +X right, +Y up, the camera
// looking down -Z (the OpenGL convention the daemon expects for normals).
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

        struct Varyings
        {
            float4 positionCS : SV_POSITION;
            float2 uv : TEXCOORD0;
        };

        Varyings FullScreen(uint vertexID : SV_VertexID)
        {
            Varyings output;
            output.positionCS = GetFullScreenTriangleVertexPosition(vertexID);
            output.uv = GetFullScreenTriangleTexCoord(vertexID);
            return output;
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
                return SampleSceneDepth(input.uv);
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
                float3 world = SampleSceneNormals(input.uv);
                return half4(normalize(TransformWorldToViewDir(world, true)), 1.0);
            }
            ENDHLSL
        }
    }
}
