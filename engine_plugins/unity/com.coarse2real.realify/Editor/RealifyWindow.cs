using System;
using System.Collections.Concurrent;
using System.Threading;
using System.Threading.Tasks;
using C2R.V1;
using Coarse2Real.Core;
using UnityEditor;
using UnityEngine;
using UnityEngine.Playables;

namespace Coarse2Real.Editor
{
    /// <summary>
    /// Window > Coarse2Real > Realify: pick a camera, record a Timeline range or play-mode frames,
    /// stream them to the daemon and watch the realified frames arrive (previews included) in the
    /// window. The daemon is asked first (GetInfo: version check, models, GPUs), so a missing daemon
    /// is a sentence, not an RPC dump; then Plan (protocol 1.1) says whether the frame range at this
    /// size and these settings fits its GPU and how long it takes, before anything is recorded. A change
    /// to anything the plan depends on marks it out of date until the daemon is asked again. Capture runs one frame per editor update with at most
    /// <see cref="MaxFramesInFlight"/> frames between capture and the wire. Everything a run owns
    /// (connection, session, capture, writer, the send chain) lives in one <see cref="Run"/>: worker
    /// threads only ever enqueue actions tagged with their run, and the main thread drops the actions
    /// of a run that is no longer the current one, so a cancel is final and no late callback can
    /// touch a disposed session or overwrite the cancel message.
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
        Run current;
        ResultSequenceWriter shown; // the last run's writer: its preview stays visible after the run
        string status = "idle";
        string daemonText = "not asked yet";
        string planText = "no plan yet";
        MessageType planType = MessageType.None;

        /// <summary>One recording: created on Realify, forgotten on Stop; its callbacks check that it is still current.</summary>
        sealed class Run
        {
            public DaemonConnection Connection;
            public RealifyStreamingSession Session;
            public GBufferCapture Capture;
            public ResultSequenceWriter Writer;
            public Task SendTail = Task.CompletedTask;
            public int NextFrame, FramesInFlight, SavedCaptureFramerate;
            public bool Ending;
        }

        [MenuItem("Window/Coarse2Real/Realify")]
        public static void Open() => GetWindow<RealifyWindow>("Realify");

        bool Recording => current != null;

        void OnEnable()
        {
            EditorApplication.update += Tick;
            _ = AskDaemon();
        }

        void OnDisable()
        {
            EditorApplication.update -= Tick;
            Stop(true, "the window was closed");
        }

        /// <summary>Queue <paramref name="action"/> for the main thread, if <paramref name="run"/> is still the current one then.</summary>
        void Post(Run run, Action action) => mainThread.Enqueue(() =>
        {
            if (run == null || run == current)
            {
                action();
            }
        });

        void OnGUI()
        {
            using (new EditorGUI.DisabledScope(Recording))
            {
                captureCamera = (Camera)EditorGUILayout.ObjectField("Camera", captureCamera, typeof(Camera), true);
                EditorGUI.BeginChangeCheck(); // what the plan depends on: the frame count and size ...
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
                bool planInputsChanged = EditorGUI.EndChangeCheck();
                EditorGUILayout.Space();
                prompt = EditorGUILayout.TextField("Prompt", prompt);
                EditorGUI.BeginChangeCheck(); // ... the daemon and the session's settings
                address = EditorGUILayout.TextField("Daemon", address);
                token = EditorGUILayout.PasswordField("Token", token);
                model = EditorGUILayout.TextField("Model (empty: default)", model);
                quality = EditorGUILayout.TextField("Quality", quality);
                resolution = EditorGUILayout.TextField("Model grid (480p/720p/native)", resolution);
                if (EditorGUI.EndChangeCheck() || planInputsChanged)
                {
                    planText = "settings changed: press Check daemon to ask whether they fit";
                    planType = MessageType.None;
                }
                outputFolder = EditorGUILayout.TextField("Output folder", outputFolder);
                format = EditorGUILayout.Popup("Format", format == "exr" ? 1 : 0, new[] { "png", "exr" }) == 1 ? "exr" : "png";
                if (GUILayout.Button("Check daemon"))
                {
                    _ = AskDaemon();
                }
            }
            EditorGUILayout.HelpBox(daemonText, MessageType.None);
            EditorGUILayout.HelpBox(planText, planType);
            EditorGUILayout.HelpBox(status, MessageType.None);
            if (!Recording && GUILayout.Button("Realify"))
            {
                _ = Start();
            }
            if (Recording && GUILayout.Button("Cancel"))
            {
                Stop(true, null);
            }
            Texture2D latest = shown != null ? shown.Latest : null;
            if (latest != null)
            {
                Rect area = GUILayoutUtility.GetAspectRect((float)latest.width / latest.height);
                EditorGUI.DrawPreviewTexture(area, latest);
            }
        }

        /// <summary>
        /// GetInfo into the window's daemon box (version, device, GPUs, models, presets, or what to do), then
        /// Plan into its plan box: the daemon's sentence for the frame range at this size with these settings,
        /// and what to lower when it does not fit. The settings are read here, on the main thread.
        /// </summary>
        async Task AskDaemon()
        {
            daemonText = $"asking the daemon at {address}...";
            planText = "waiting for the daemon";
            planType = MessageType.None;
            SessionConfig config = RealifyStreamingSession.DefaultConfig(prompt, model, quality, resolution, withNormals);
            string subject = DaemonStatus.PlanSubject(FrameCount, width, height);
            uint planWidth = (uint)Math.Max(width, 1), planHeight = (uint)Math.Max(height, 1), planFrames = (uint)Math.Max(FrameCount, 0);
            try
            {
                using (var connection = new DaemonConnection(address, token))
                {
                    InfoReply info = await connection.InfoAsync(CancellationToken.None);
                    Post(null, () => daemonText = DaemonConnection.Describe(info));
                    if (!DaemonStatus.CanPlan(info.ProtocolMinor))
                    {
                        Post(null, () => planText = DaemonStatus.CannotPlan(info.ProtocolMajor, info.ProtocolMinor));
                        return;
                    }
                    try
                    {
                        PlanReply plan = await connection.PlanAsync(config, planWidth, planHeight, planFrames, CancellationToken.None);
                        Post(null, () =>
                        {
                            planText = DaemonStatus.DescribePlan(subject, plan.Fits, plan.Summary, plan.Advice);
                            planType = plan.Fits || string.IsNullOrEmpty(plan.Advice) ? MessageType.Info : MessageType.Warning;
                        });
                    }
                    catch (DaemonException error) // e.g. a model it does not serve
                    {
                        Post(null, () => planText = $"the daemon could not plan {subject}: {error.Message}");
                    }
                }
            }
            catch (Exception error) // DaemonException (friendly), or a bad address
            {
                Post(null, () =>
                {
                    daemonText = error.Message;
                    planText = "no plan: the daemon did not answer (see above)";
                });
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
            var run = new Run();
            current = run;
            status = $"connecting to {address}...";
            try
            {
                run.Connection = new DaemonConnection(address, token);
                InfoReply info = await run.Connection.InfoAsync(CancellationToken.None); // version check before any frame
                daemonText = DaemonConnection.Describe(info);
                run.Session = new RealifyStreamingSession();
                run.Session.ResultArrived += result => Post(run, () => ShowResult(run, result));
                run.Session.ProgressArrived += progress => Post(run, () => status = $"window {progress.Window}: {progress.Kind} {progress.Step}/{progress.NumSteps}, {progress.FramesReturned} returned");
                run.Session.WarningArrived += warning => Post(run, () => Debug.LogWarning("Coarse2Real: " + warning));
                run.Session.Failed += error => Post(run, () => Stop(false, "failed: " + error));
                run.Session.Finished += done => Post(run, () => Finish(run, done));
                bool sameHost = RealifyStreamingSession.WantsSharedMemory(address, info);
                var config = RealifyStreamingSession.DefaultConfig(prompt, model, quality, resolution, withNormals, sameHost);
                await run.Session.OpenAsync(run.Connection, config, info);
                if (run != current)
                {
                    Dispose(run); // cancelled while connecting
                    return;
                }
                run.Writer = new ResultSequenceWriter(outputFolder, captureCamera.name, format);
                shown = run.Writer;
                run.Capture = new GBufferCapture(captureCamera, width, height, withNormals);
                run.SavedCaptureFramerate = Time.captureFramerate;
                Time.captureFramerate = fps; // play mode advances exactly one frame of game time per capture
                status = $"recording into session {run.Session.SessionId}";
            }
            catch (Exception error)
            {
                if (run == current)
                {
                    Stop(true, "could not start: " + error.Message);
                }
                else
                {
                    Dispose(run);
                }
            }
        }

        int FrameCount => source == Source.PlayMode ? lastFrame : lastFrame - firstFrame + 1;

        void Tick()
        {
            Action action;
            while (mainThread.TryDequeue(out action))
            {
                action();
                Repaint();
            }
            Run run = current;
            if (run == null || run.Capture == null || run.Ending || run.FramesInFlight >= MaxFramesInFlight || run.Session.Protocol.IsOver)
            {
                return;
            }
            if (run.NextFrame >= FrameCount)
            {
                if (run.FramesInFlight == 0 && run.Session.Protocol.State == SessionState.Streaming)
                {
                    run.Ending = true;
                    RealifyStreamingSession session = run.Session; // captured: the continuation never reads the window's fields
                    run.SendTail = run.SendTail.ContinueWith(_ => session.EndAsync()).Unwrap();
                    status = "all frames sent; waiting for the last window";
                }
                return;
            }
            if (source == Source.TimelineRange)
            {
                director.time = (firstFrame + run.NextFrame) / (double)fps;
                director.Evaluate();
            }
            run.FramesInFlight++;
            run.Capture.Capture(run.NextFrame, frame => run.SendTail = SendAfter(run, run.SendTail, frame), error => Post(run, () => Stop(true, error)));
            run.NextFrame++;
        }

        async Task SendAfter(Run run, Task previous, CapturedFrame frame)
        {
            await previous;
            try
            {
                await run.Session.SendAsync(frame.Index, frame.Color, frame.Depth, frame.Normals);
            }
            catch (Exception error)
            {
                Post(run, () => Stop(true, $"frame {frame.Index} was not sent: {error.Message}"));
            }
            finally
            {
                Post(run, () => run.FramesInFlight--);
            }
        }

        void ShowResult(Run run, ResultFrame result)
        {
            if (result.Color == null || run.Writer == null)
            {
                return;
            }
            int frame = (int)result.Index + (source == Source.TimelineRange ? firstFrame : 0);
            run.Writer.Show(frame, result.Color.Data.ToByteArray(), (int)result.Color.Shape[1], (int)result.Color.Shape[0], result.Preview);
        }

        /// <summary>
        /// The daemon sent every frame back: end the run, then say "done" only once every file is on disk
        /// (the writer encodes on the thread pool), or say which write failed; never a silent loss.
        /// </summary>
        void Finish(Run run, Done done)
        {
            ResultSequenceWriter writer = run.Writer;
            string folder = outputFolder;
            Stop(false, $"{done.FramesReturned} frames back in {done.Seconds:F1} s; writing the last files to {folder}...");
            if (writer == null)
            {
                return;
            }
            _ = writer.FlushAsync().ContinueWith(written => Post(null, () =>
            {
                if (current != null)
                {
                    return; // a newer run owns the status line
                }
                status = written.IsFaulted
                    ? $"{done.FramesReturned} frames came back but writing them to {folder} failed: {written.Exception.GetBaseException().Message}"
                    : $"done: {done.FramesReturned} frames in {done.Seconds:F1} s, in {folder}";
            }));
        }

        /// <summary>End the current run now, on the main thread: cancel the daemon's work if asked; the message is final.</summary>
        void Stop(bool cancel, string message)
        {
            Run run = current;
            if (run == null)
            {
                return;
            }
            current = null; // from here on, every callback of this run is dropped
            long returned = run.Session != null ? run.Session.Protocol.FramesReturned : 0;
            status = message ?? $"cancelled after {returned} frames; they are in {outputFolder}";
            if (run.Capture != null)
            {
                Time.captureFramerate = run.SavedCaptureFramerate;
                run.Capture.Dispose(); // here, on the main thread; pending readbacks are dropped, not reported
                run.Capture = null;
            }
            if (cancel && run.Session != null)
            {
                RealifyStreamingSession session = run.Session;
                _ = session.CancelAsync().ContinueWith(_ => Dispose(run)); // gRPC objects may be disposed from any thread
            }
            else
            {
                Dispose(run);
            }
        }

        /// <summary>The run's gRPC side (thread safe); its capture is disposed by Stop on the main thread.</summary>
        static void Dispose(Run run)
        {
            if (run.Session != null)
            {
                run.Session.Dispose();
            }
            if (run.Connection != null)
            {
                run.Connection.Dispose();
            }
        }
    }
}
