using System;

namespace Coarse2Real.Core
{
    public enum SessionState
    {
        Idle,       // nothing sent
        Opening,    // SessionConfig sent, waiting for SessionStarted
        Streaming,  // frames may be sent
        Ending,     // EndOfStream sent: the daemon flushes the last window
        Finished,   // Done received
        Cancelled,  // Cancel sent (or the call was cancelled)
        Failed,     // the stream ended with an error status
    }

    /// <summary>What the client sends, in coarse2real.proto's ClientMessage oneof.</summary>
    public enum ClientMessageKind { Config, Frame, End, Cancel }

    /// <summary>What the daemon sends, in coarse2real.proto's ServerMessage oneof (a ResultBatch is received as its
    /// results, one Result each, in order).</summary>
    public enum ServerMessageKind { Started, Progress, Result, Warning, Done }

    /// <summary>
    /// The Realify stream's rules, kept apart from gRPC so they can be tested anywhere:
    /// SessionConfig first; frames only after SessionStarted, with consecutive indices from 0
    /// (the daemon refuses a gap); EndOfStream or Cancel last; results count as returned when
    /// final (previews do not). Each method returns the message kind to put on the wire, or
    /// throws InvalidOperationException saying what to do instead.
    /// </summary>
    public sealed class RealifySessionProtocol
    {
        public SessionState State { get; private set; } = SessionState.Idle;
        public long FramesSent { get; private set; }
        public long FramesReturned { get; private set; }
        public long NextResultIndex { get; private set; }
        public string Error { get; private set; } = "";

        public bool IsOver => State == SessionState.Finished || State == SessionState.Cancelled || State == SessionState.Failed;

        public ClientMessageKind Open()
        {
            Require(State == SessionState.Idle, "open a session once; create a new one for another take");
            State = SessionState.Opening;
            return ClientMessageKind.Config;
        }

        public ClientMessageKind SendFrame(long index)
        {
            Require(State == SessionState.Streaming,
                State == SessionState.Opening ? "wait for SessionStarted before sending frames" : $"the session is {State}; start a new session to send frames");
            if (index != FramesSent)
            {
                throw new InvalidOperationException($"frame index {index} is out of order: the daemon expects {FramesSent} next (indices are consecutive from 0)");
            }
            FramesSent++;
            return ClientMessageKind.Frame;
        }

        public ClientMessageKind End()
        {
            Require(State == SessionState.Streaming, $"end a streaming session (this one is {State})");
            State = SessionState.Ending;
            return ClientMessageKind.End;
        }

        /// <summary>Cancel from any live state; null when there is nothing left to cancel.</summary>
        public ClientMessageKind? Cancel()
        {
            if (IsOver || State == SessionState.Idle)
            {
                return null;
            }
            State = SessionState.Cancelled;
            return ClientMessageKind.Cancel;
        }

        /// <summary>Account for one daemon message; <paramref name="resultIndex"/> and <paramref name="preview"/> matter for results.</summary>
        public void Receive(ServerMessageKind kind, long resultIndex = -1, bool preview = false)
        {
            switch (kind)
            {
                case ServerMessageKind.Started:
                    Require(State == SessionState.Opening || State == SessionState.Cancelled, $"SessionStarted arrived while {State}");
                    if (State == SessionState.Opening)
                    {
                        State = SessionState.Streaming;
                    }
                    break;
                case ServerMessageKind.Result:
                    if (preview || State == SessionState.Cancelled)
                    {
                        break;
                    }
                    if (resultIndex < 0 || resultIndex >= FramesSent)
                    {
                        throw new InvalidOperationException($"result for frame {resultIndex} but only {FramesSent} frames were sent");
                    }
                    FramesReturned++;
                    NextResultIndex = Math.Max(NextResultIndex, resultIndex + 1);
                    break;
                case ServerMessageKind.Done:
                    if (State != SessionState.Cancelled)
                    {
                        State = SessionState.Finished;
                    }
                    break;
            }
        }

        /// <summary>The call ended with a status other than OK; a cancelled session stays Cancelled.</summary>
        public void Fail(string message)
        {
            if (State == SessionState.Cancelled || State == SessionState.Finished)
            {
                return;
            }
            State = SessionState.Failed;
            Error = message;
        }

        static void Require(bool condition, string message)
        {
            if (!condition)
            {
                throw new InvalidOperationException(message);
            }
        }
    }
}
