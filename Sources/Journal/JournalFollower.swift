import NIOCore
import Synchronization

/// A live reader of a journal's appends (`JournalWriter.follow`): the frames appended since it
/// began following, queued in sequence order up to a bound. Past the bound it drops what it
/// holds and says so (`Batch.overflowed`): its reader goes back to the segments on disk for
/// them. So a slow standby never makes the active hold unbounded memory, and an append never
/// waits for a follower (it is handed the frame under the writer's lock, and only queues it).
package final class JournalFollower: Sendable {
    package struct Batch: Sendable {
        package var frames: [(sequence: UInt64, frame: ByteBuffer)]
        /// Frames were dropped before these: read them from the segments.
        package var overflowed: Bool
    }

    private struct State {
        var frames: [(sequence: UInt64, frame: ByteBuffer)] = []
        var bytes = 0
        var overflowed = false
    }

    let maxBytes: Int
    private let state = Mutex(State())
    /// Yields after an append (at most one wake-up waits): the reader takes what is queued.
    package let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    package init(maxBytes: Int = 64 << 20) {
        self.maxBytes = maxBytes
        (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Called by the writer, under its lock, with each frame appended.
    func appended(_ frame: ByteBuffer, sequence: UInt64) {
        state.withLock { s in
            guard !s.overflowed else { return }
            if s.bytes + frame.readableBytes > maxBytes && !s.frames.isEmpty {
                (s.overflowed, s.frames, s.bytes) = (true, [], 0)
            } else {
                s.frames.append((sequence, frame))
                s.bytes += frame.readableBytes
            }
        }
        wake.yield()
    }

    /// Takes everything queued (and whether frames were dropped before it).
    package func take() -> Batch {
        state.withLock { s in
            defer { (s.frames, s.bytes, s.overflowed) = ([], 0, false) }
            return Batch(frames: s.frames, overflowed: s.overflowed)
        }
    }

    /// Bytes of frames queued and not taken yet.
    package var queuedBytes: Int { state.withLock { $0.bytes } }

    /// No more wake-ups (the reader is done).
    package func finish() { wake.finish() }
}
