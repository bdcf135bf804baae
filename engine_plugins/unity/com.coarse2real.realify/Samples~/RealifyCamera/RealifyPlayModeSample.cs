using System.Collections.Concurrent;
using System.Threading.Tasks;
using C2R.V1;
using Coarse2Real;
using UnityEngine;

/// <summary>
/// Put on any GameObject, assign a camera, press Play: the first <see cref="frames"/> frames of
/// that camera are realified and written as a PNG sequence to <see cref="outputFolder"/>. The same
/// building blocks as the Realify window (GBufferCapture, RealifyStreamingSession, ResultSequenceWriter).
/// </summary>
public sealed class RealifyPlayModeSample : MonoBehaviour
{
    public Camera captureCamera;
    public int frames = 33, width = 640, height = 360;
    public string address = "127.0.0.1:50051", prompt = "photorealistic street, overcast", outputFolder = "Realified";

    readonly ConcurrentQueue<ResultFrame> results = new ConcurrentQueue<ResultFrame>();
    readonly ConcurrentQueue<string> failures = new ConcurrentQueue<string>();
    DaemonConnection connection;
    RealifyStreamingSession session;
    GBufferCapture capture;
    ResultSequenceWriter writer;
    Task sendTail = Task.CompletedTask;
    int captured;

    async void Start()
    {
        Time.captureFramerate = 24; // one capture per 1/24 s of game time, however slow the frame
        connection = new DaemonConnection(address, token: null);
        session = new RealifyStreamingSession();
        session.ResultArrived += result => { if (!result.Preview) results.Enqueue(result); }; // a worker thread
        session.Failed += error => failures.Enqueue(error); // a worker thread too: logged from LateUpdate
        InfoReply info = await connection.InfoAsync(System.Threading.CancellationToken.None);
        var config = RealifyStreamingSession.DefaultConfig(prompt, "", "preview", "", withNormals: true, RealifyStreamingSession.WantsSharedMemory(address, info));
        await session.OpenAsync(connection, config, info);
        writer = new ResultSequenceWriter(outputFolder, captureCamera.name, "png");
        capture = new GBufferCapture(captureCamera, width, height);
    }

    void LateUpdate()
    {
        while (failures.TryDequeue(out string failure))
        {
            Debug.LogError("Coarse2Real: " + failure);
        }
        while (results.TryDequeue(out ResultFrame result)) // the texture on the main thread; the writer encodes files on the pool
        {
            writer.Show((int)result.Index, result.Color.Data.ToByteArray(), (int)result.Color.Shape[1], (int)result.Color.Shape[0], preview: false);
        }
        if (capture == null || captured >= frames) return;
        capture.Capture(captured++, frame => sendTail = sendTail.ContinueWith(_ => session.SendAsync(frame.Index, frame.Color, frame.Depth, frame.Normals)).Unwrap(), Debug.LogError);
        if (captured == frames) sendTail = sendTail.ContinueWith(_ => session.EndAsync()).Unwrap();
    }

    void OnDestroy()
    {
        capture?.Dispose();
        session?.Dispose();
        connection?.Dispose();
    }
}
