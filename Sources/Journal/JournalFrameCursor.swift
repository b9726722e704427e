import Glibc
import NIOCore

/// Reads a journal's frames as they are on disk, byte for byte, in sequence order, after a
/// given sequence and through a limit, a batch at a time: what an HA active sends a standby
/// that catches up. A segment written again after a durable-side failure repeats sequences of
/// the one before it; each sequence is given once. Frames of a version 1 segment are framed
/// again in the current version (a reader of the copy expects one version per segment).
/// Used by one task at a time (handed from thread to thread, never shared).
package final class JournalFrameCursor: @unchecked Sendable {
    package enum Failure: Error, Hashable, Sendable, CustomStringConvertible {
        /// The journal no longer holds the records wanted: a checkpoint deleted them. `oldest`
        /// is the first sequence it may still hold.
        case gone(oldest: UInt64)
        case damaged(String)

        package var description: String {
            switch self {
            case .gone(let oldest): return "the journal no longer holds these records (it starts at record \(oldest))"
            case .damaged(let d): return "journal damaged: \(d)"
            }
        }
    }

    let directory: JournalDirectory
    let limit: UInt64
    /// The last sequence given.
    package private(set) var last: UInt64
    private var pending: [(first: UInt64, path: String)]
    private var fd: Int32 = -1
    private var path = ""
    private var decoder = JournalFrameDecoder()
    private var buffer = ByteBuffer()

    /// A cursor on the records after `after` through `limit`. Throws `Failure.gone` when the
    /// journal does not reach back to `after + 1`.
    package init(directory: JournalDirectory, after: UInt64, through limit: UInt64) throws {
        self.directory = directory
        self.limit = limit
        last = after
        let segments = directory.segments()
        guard limit > after else {
            pending = []
            return
        }
        // Segments are named by their first sequence: the last one starting at or before
        // `after + 1` holds it (or, written again after a failure, a copy of it).
        guard let start = segments.lastIndex(where: { $0.first <= after + 1 }) else {
            throw Failure.gone(oldest: segments.first?.first ?? limit)
        }
        pending = Array(segments[start...])
    }

    deinit { closeSegment() }

    /// The epoch of record `sequence`, if the journal still holds it (nil: a checkpoint deleted
    /// it, or there is none). A standby says which epoch its last record is of, and the active
    /// compares it with its own record of that sequence: two journals that share a sequence
    /// but not its epoch have different histories (see `ReplicationMessage.hello`).
    package static func epoch(of sequence: UInt64, in directory: JournalDirectory) -> UInt64? {
        guard sequence > 0, let cursor = try? JournalFrameCursor(directory: directory, after: sequence - 1, through: sequence),
              let first = try? cursor.nextBatch(maxBytes: 1).first, first.sequence == sequence,
              case .success(let record) = JournalFormat.record(inFrame: first.frame) else { return nil }
        return record.epoch
    }

    /// Whether every record through the limit has been given.
    package var isDone: Bool { last >= limit }

    /// The next frames, about `maxBytes` of them (at least one), none once `isDone`.
    package func nextBatch(maxBytes: Int = 4 << 20) throws -> [(sequence: UInt64, frame: ByteBuffer)] {
        var out: [(sequence: UInt64, frame: ByteBuffer)] = []
        var bytes = 0
        while last < limit && bytes < maxBytes {
            if fd < 0 { try openNext() }
            guard let step = decoder.next(&buffer) else {
                if try !readMore() { closeSegment() }
                continue
            }
            switch step {
            case .record(let r, let n):
                // A repeat of a sequence given already: a rewrite after a failure.
                guard r.sequence > last else { continue }
                guard r.sequence <= limit else {
                    last = limit
                    continue
                }
                // The frame's bytes, which the decoder has just consumed (after the segment's
                // header, with the first frame).
                let end = buffer.readerIndex
                buffer.moveReaderIndex(to: end - n)
                let raw = buffer.readSlice(length: n)!
                buffer.moveReaderIndex(to: end)
                let frame = decoder.version == JournalFormat.version ? raw : JournalFormat.frame(r)
                out.append((r.sequence, frame))
                bytes += frame.readableBytes
                last = r.sequence
            case .rejected:
                continue
            case .damage(let d):
                throw Failure.damaged("\(path): \(d)")
            case .end:
                closeSegment()
            }
        }
        return out
    }

    private func openNext() throws {
        guard !pending.isEmpty else {
            // The segments ended before the limit: deleted while this read them.
            throw Failure.gone(oldest: directory.segments().first?.first ?? limit)
        }
        path = pending.removeFirst().path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            if e == ENOENT { throw Failure.gone(oldest: directory.segments().first?.first ?? limit) }
            throw Failure.damaged("open \(path): errno \(e)")
        }
        // The epoch check goes on from segment to segment; sequences restart (a rewrite).
        decoder = JournalFrameDecoder(epochs: decoder.epochs)
        buffer.clear()
    }

    /// Reads more of the segment; false at its end.
    private func readMore() throws -> Bool {
        buffer.discardReadBytes()
        var failure: Int32 = 0
        let n = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: JournalReader.readChunk) { p -> Int in
            while true {
                let n = read(fd, p.baseAddress, p.count)
                if n < 0, errno == EINTR { continue }
                if n < 0 { failure = errno }
                return max(0, n)
            }
        }
        if failure != 0 { throw Failure.damaged("read \(path): errno \(failure)") }
        return n > 0
    }

    private func closeSegment() {
        if fd >= 0 { close(fd) }
        fd = -1
    }
}
