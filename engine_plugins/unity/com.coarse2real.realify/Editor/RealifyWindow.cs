using System;
using System.Collections.Concurrent;
using System.Threading.Tasks;
using C2R.V1;
using UnityEditor;
using UnityEngine;
using UnityEngine.Playables;

namespace Coarse2Real.Editor
{
    /// <summary>
    /// Window > Coarse2Real > Realify: pick a camera, record a Timeline range or play-mode frames,
    /// stream them to the daemon and watch the realified frames arrive. Capture runs one frame per
    /// editor update with at most <see cref="MaxFramesInFlight"/> frames between capture and the
    /// wire, so neither the GPU readbacks nor a slow daemon ever stall the editor. gRPC events
    /// come in on worker threads and are applied here, on the main thread, in EditorApplication.update.
    /// </summary>
    public sealed class RealifyWindow : EditorWindow
    {
        const int MaxFramesInFlight = 4;

        enum Source { TimelineRange, PlayMode }

        [SerializeField] Camera captureCamera;
        [SerializeField] Source source = Source.TimelineRange;
        [SerializeField] PlayableDirector director;
        [SerializeField] int firstFrame, lastFrame = 80, fps = 24, width = 640, height = 360;
        [SerializeField] bool withNormals = true;
        [SerializeField] string address = "127.0.0.1:50051", token = "", prompt = "", model = "", quality = "preview", resolution = "";
        [SerializeField] string outputFolder = "Realified", format = "png";

        readonly ConcurrentQueue<Action> mainThread = new ConcurrentQueue<Action>();
        DaemonConnection connection;
        RealifyStreamingSession session;
        GBufferCapture capture;
        ResultSequenceWriter writer;
        Task sendTail = Task.CompletedTask;
        int nextFrame, framesInFlight, savedCaptureFramerate;
        string status = "idle";

        [MenuItem("Window/Coarse2Real/Realify")]
        public static void Open() => GetWindow<RealifyWindow>("Realify");

        bool Recording => capture != null;

        void OnEnable() => EditorApplication.update += Tick;

        void OnDisable()
        {
            EditorApplication.update -= Tick;
            _ = Stop(cancel: true);
        }

        void OnGUI()
        {
            using (new EditorGUI.DisabledScope(Recording))
            {
                captureCamera = (Camera)EditorGUILayout.ObjectField("Camera", captureCamera, typeof(Camera), true);
                source = (Source)EditorGUILayout.EnumPopup("Record", source);
                if (source == Source.TimelineRange)
                {
                    director = (PlayableDirector)EditorGUILayout.ObjectField("Timeline", director, typeof(PlayableDirector), true);
                    firstFrame = EditorGUILayout.IntField("First frame", firstFrame);
                }
                lastFrame = EditorGUILayout.IntField(source == Source.PlayMode ? "Frames" : "Last frame", lastFrame);
                fps = EditorGUILayout.IntSlider("Frames per second", fps, 1, 120);
                width = EditorGUILayout.IntField("Width", width);
                height = EditorGUILayout.IntField("Height", height);
                withNormals = EditorGUILayout.Toggle("Send normals", withNormals);
                EditorGUILayout.Space();
                address = EditorGUILayout.TextField("Daemon", address);
                token = EditorGUILayout.PasswordField("Token", token);
                prompt = EditorGUILayout.TextField("Prompt", prompt);
                model = EditorGUILayout.TextField("Model (empty: default)", model);
                quality = EditorGUILayout.TextField("Quality", quality);
                resolution = EditorGUILayout.TextField("Model grid (480p/720p/native)", resolution);
                outputFolder = EditorGUILayout.TextField("Output folder", outputFolder);
                format = EditorGUILayout.Popup("Format", format == "exr" ? 1 : 0, new[] { "png", "exr" }) == 1 ? "exr" : "png";
            }
            EditorGUILayout.HelpBox(status, MessageType.None);
            if (!Recording && GUILayout.Button("Realify"))
            {
                _ = Start();
            }
            if (Recording && GUILayout.Button("Cancel"))
            {
                _ = Stop(cancel: true);
            }
            if (writer?.Latest != null)
            {
                Rect area = GUILayoutUtility.GetAspectRect((float)writer.Latest.width / writer.Latest.height);
                EditorGUI.DrawPreviewTexture(area, writer.Latest);
            }
        }

        async Task Start()
        {
            if (captureCamera == null || (source == Source.TimelineRange && director == null))
            {
                status = "choose a Camera" + (source == Source.TimelineRange ? " and the PlayableDirector of the Timeline to record" : "");
                return;
            }
            if (source == Source.PlayMode && !EditorApplication.isPlaying)
            {
                status = "enter Play mode first, then press Realify to record play-mode frames";
                return;
            }
            try
            {
                connection = new DaemonConnection(address, token);
                session = new RealifyStreamingSession();
                session.ResultArrived += result => mainThread.Enqueue(() => ShowResult(result));
                session.ProgressArrived += progress => mainThread.Enqueue(() => status = $"window {progress.Window}: {progress.Kind} {progress.Step}/{progress.NumSteps}, {progress.FramesReturned} returned");
                session.WarningArrived += warning => mainThread.Enqueue(() => Debug.LogWarning("Coarse2Real: " + warning));
                session.Failed += error => mainThread.Enqueue(() => { status = "failed: " + error; _ = Stop(cancel: false); });
                session.Finished += done => mainThread.Enqueue(() => { status = $"done: {done.FramesReturned} frames in {done.Seconds:F1} s"; _ = Stop(cancel: false); });
                var config = RealifyStreamingSession.DefaultConfig(prompt, model, quality, resolution, withNormals);
                await session.OpenAsync(connection, config);
                writer = new ResultSequenceWriter(outputFolder, captureCamera.name, format);
                capture = new GBufferCapture(captureCamera, width, height, withNormals);
                nextFrame = 0;
                savedCaptureFramerate = Time.captureFramerate;
                Time.captureFramerate = fps; // play mode advances exactly one frame of game time per capture
                status = $"recording into session {session.SessionId}";
            }
            catch (Exception error)
            {
                status = "could not start: " + error.Message;
                await Stop(cancel: true);
            }
        }

        int FrameCount => source == Source.PlayMode ? lastFrame : lastFrame - firstFrame + 1;

        void Tick()
        {
            while (mainThread.TryDequeue(out Action action))
            {
                action();
                Repaint();
            }
            if (!Recording || framesInFlight >= MaxFramesInFlight || session.Protocol.IsOver)
            {
                return;
            }
            if (nextFrame >= FrameCount)
            {
                if (framesInFlight == 0 && session.Protocol.State == Core.SessionState.Streaming)
                {
                    sendTail = sendTail.ContinueWith(_ => session.EndAsync()).Unwrap();
                    status = "all frames sent; waiting for the last window";
                }
                return;
            }
            if (source == Source.TimelineRange)
            {
                director.time = (firstFrame + nextFrame) / (double)fps;
                director.Evaluate();
            }
            framesInFlight++;
            capture.Capture(nextFrame, frame => sendTail = SendAfter(sendTail, frame), error => mainThread.Enqueue(() => { status = error; _ = Stop(cancel: true); }));
            nextFrame++;
        }

        async Task SendAfter(Task previous, CapturedFrame frame)
        {
            await previous;
            try
            {
                await session.SendAsync(frame.Index, frame.Color, frame.Depth, frame.Normals);
            }
            catch (Exception error)
            {
                mainThread.Enqueue(() => status = $"frame {frame.Index} was not sent: {error.Message}");
            }
            finally
            {
                mainThread.Enqueue(() => framesInFlight--);
            }
        }

        void ShowResult(ResultFrame result)
        {
            if (result.Preview || result.Color == null)
            {
                return;
            }
            int frame = (int)result.Index + (source == Source.TimelineRange ? firstFrame : 0);
            writer.Write(frame, result.Color.Data.ToByteArray(), (int)result.Color.Shape[1], (int)result.Color.Shape[0]);
        }

        async Task Stop(bool cancel)
        {
            if (cancel && session != null)
            {
                await session.CancelAsync();
                status = $"cancelled after {session.Protocol.FramesReturned} frames; they are in {outputFolder}";
            }
            if (capture != null)
            {
                Time.captureFramerate = savedCaptureFramerate;
                capture.Dispose();
                capture = null;
            }
            session?.Dispose();
            session = null;
            connection?.Dispose();
            connection = null;
            framesInFlight = 0;
            sendTail = Task.CompletedTask;
        }
    }
}
