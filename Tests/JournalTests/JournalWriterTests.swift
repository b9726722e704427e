import FileStore
import Foundation
import Journal
import Logging
import NIOConcurrencyHelpers
import Testing

/// The journal writer's back-pressure and its memory bound, with real segments in a temporary
/// directory; no server.
@Suite("Journal writer")
struct JournalWriterTests {
    static let export: UInt64 = 1

    static func scratch() -> JournalDirectory {
        JournalDirectory(root: NSTemporaryDirectory() + "swiftnfs-writer-\(UUID().uuidString)")
    }

    static func write(_ n: Int, bytes: Int = 64 << 10) -> FileChange {
        .write(fileID: 7, path: Array("f".utf8), offset: UInt64(n * bytes), data: [UInt8](repeating: UInt8(n & 0xff), count: bytes))
    }

    /// Runs `body` on a thread of its own; the flag says whether it has returned.
    static func onThread(_ body: @escaping @Sendable () throws -> Void) -> NIOLockedValueBox<Bool> {
        let done = NIOLockedValueBox(false)
        Thread.detachNewThread {
            try? body()
            done.withLockedValue { $0 = true }
        }
        return done
    }

    static func eventually(_ seconds: Double = 10, _ condition: () -> Bool) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }

    @Test("a change waits while the journal is at its limit and goes on once a checkpoint frees room")
    func waitsAtTheLimit() throws {
        let directory = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory.root) }
        var limits = JournalWriter.Limits()
        limits.maxUncheckpointedBytes = 1 << 20
        let writer = try JournalWriter(directory: directory, lastSequence: 0, uncheckpointedBytes: 0, limits: limits,
                                       logger: Logger(label: "test"))
        // Past the limit (append itself never waits).
        for n in 0..<20 { writer.append(exportID: Self.export, Self.write(n)) }
        #expect(writer.status.uncheckpointedBytes > limits.maxUncheckpointedBytes)
        let done = Self.onThread {
            try writer.waitForRoom(bytes: 4096)
            writer.releaseRoom(bytes: 4096)
        }
        #expect(Self.eventually { writer.status.waitingForRoom == 1 })
        usleep(300_000)
        #expect(done.withLockedValue { $0 } == false, "a change went through a full journal")
        // The records are durable, the copy takes them, the journal shrinks.
        try writer.waitDurable(writer.lastAppended)
        let report = try Checkpointer(directory: directory, writer: writer, logger: Logger(label: "test"), syncServed: {}).checkpoint()
        #expect(report.records == 20)
        #expect(Self.eventually { done.withLockedValue { $0 } }, "the change stayed held back after the checkpoint")
        #expect(writer.status.uncheckpointedBytes == 0)
        #expect(directory.segments().count <= 1)
    }

    /// Changes admitted together hold their room until appended, so they cannot together
    /// overshoot the limit: many threads at once, the journal never more than one change over.
    @Test("changes admitted at once never overshoot the limit by more than one change")
    func admittedChangesHoldRoom() throws {
        let directory = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory.root) }
        var limits = JournalWriter.Limits()
        limits.maxUncheckpointedBytes = 2 << 20
        let writer = try JournalWriter(directory: directory, lastSequence: 0, uncheckpointedBytes: 0, limits: limits,
                                       logger: Logger(label: "test"))
        let checkpointer = Checkpointer(directory: directory, writer: writer, logger: Logger(label: "test"), syncServed: {})
        let peak = NIOLockedValueBox(0)
        let writing = NIOLockedValueBox(8)
        for _ in 0..<8 {
            Thread.detachNewThread {
                defer { writing.withLockedValue { $0 -= 1 } }
                for n in 0..<40 {
                    let room = 66 << 10
                    guard (try? writer.waitForRoom(bytes: room)) != nil else { continue }
                    usleep(1000)  // the change itself, made while the room is held
                    writer.append(exportID: Self.export, Self.write(n))
                    writer.releaseRoom(bytes: room)
                    let now = writer.status.uncheckpointedBytes
                    peak.withLockedValue { $0 = max($0, now) }
                }
            }
        }
        // The checkpoints that make room, on this thread, until every writer is done.
        while writing.withLockedValue({ $0 }) > 0 { _ = try? checkpointer.checkpoint() }
        #expect(peak.withLockedValue { $0 } <= limits.maxUncheckpointedBytes)
    }

    @Test("an fsync waits for a change under way (room held) and covers it too; a lone change is synced at once")
    func fsyncCoversChangesUnderWay() throws {
        let directory = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory.root) }
        var limits = JournalWriter.Limits()
        limits.collectionWindow = 20  // long enough that only the change under way ends the wait
        let writer = try JournalWriter(directory: directory, lastSequence: 0, uncheckpointedBytes: 0, limits: limits,
                                       logger: Logger(label: "test"))
        // Alone: no wait, one fsync.
        let lone = writer.append(exportID: Self.export, Self.write(0, bytes: 100))
        try writer.waitDurable(lone)
        #expect(writer.status.syncs == 1)
        // B is under way (admitted, not yet appended) when A's caller wants its fsync.
        try writer.waitForRoom(bytes: 4096)
        let a = writer.append(exportID: Self.export, Self.write(1, bytes: 100))
        let synced = Self.onThread { try writer.waitDurable(a) }
        usleep(50_000)
        #expect(!synced.withLockedValue { $0 } && writer.status.durableSequence < a, "A was synced without waiting for B")
        let b = writer.append(exportID: Self.export, Self.write(2, bytes: 100))
        writer.releaseRoom(bytes: 4096)
        #expect(Self.eventually { synced.withLockedValue { $0 } })
        try writer.waitDurable(b)
        #expect(writer.status.syncs == 2, "A and B took \(writer.status.syncs - 1) fsyncs")
        #expect(writer.status.durableSequence >= b)
    }

    @Test("whenDurable: a caller with no fsync running does one and is answered before it returns; one already durable at once")
    func whenDurableAlone() throws {
        let directory = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory.root) }
        let writer = try JournalWriter(directory: directory, lastSequence: 0, uncheckpointedBytes: 0, logger: Logger(label: "test"))
        let answers = NIOLockedValueBox<[String]>([])
        let a = writer.append(exportID: Self.export, Self.write(0, bytes: 100))
        writer.whenDurable(a) { error in answers.withLockedValue { $0.append("a \(error.map { "\($0)" } ?? "durable")") } }
        #expect(answers.withLockedValue { $0 } == ["a durable"])
        #expect(writer.status.syncs == 1 && writer.status.durableSequence >= a)
        writer.whenDurable(a) { error in answers.withLockedValue { $0.append("again \(error.map { "\($0)" } ?? "durable")") } }
        #expect(answers.withLockedValue { $0 } == ["a durable", "again durable"])
        #expect(writer.status.syncs == 1, "a record already durable took another fsync")
    }

    @Test("whenDurable while an fsync runs: the caller's thread goes on at once; the syncing thread answers them all, one fsync for the six")
    func whenDurableHeldWhileSyncing() throws {
        let directory = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory.root) }
        var limits = JournalWriter.Limits()
        limits.collectionWindow = 20  // the leader below waits (syncing) until the room is given back
        let writer = try JournalWriter(directory: directory, lastSequence: 0, uncheckpointedBytes: 0, limits: limits,
                                       logger: Logger(label: "test"))
        // A leader that is syncing: it waits for the change under way (room held) first.
        try writer.waitForRoom(bytes: 4096)
        let first = writer.append(exportID: Self.export, Self.write(0, bytes: 100))
        let leaderDone = Self.onThread { try writer.waitDurable(first) }
        #expect(Self.eventually { writer.status.syncs == 0 && !leaderDone.withLockedValue { $0 } })
        usleep(20_000)
        // Five records wait for durability without holding this thread.
        let answers = NIOLockedValueBox<[(UInt64, Bool, Bool)]>([])  // sequence, durable, on this thread
        let me = pthread_self()
        var held: [UInt64] = []
        for n in 1...5 {
            let s = writer.append(exportID: Self.export, Self.write(n, bytes: 100))
            held.append(s)
            writer.whenDurable(s) { error in answers.withLockedValue { $0.append((s, error == nil, pthread_equal(pthread_self(), me) != 0)) } }
        }
        #expect(answers.withLockedValue { $0.isEmpty }, "answered before any fsync covered them")
        #expect(writer.status.durableSequence < first)
        writer.releaseRoom(bytes: 4096)
        #expect(Self.eventually { answers.withLockedValue { $0.count } == 5 && leaderDone.withLockedValue { $0 } })
        let got = answers.withLockedValue { $0 }
        #expect(got.map(\.0) == held, "answered out of order: \(got.map(\.0))")
        #expect(got.allSatisfy { $0.1 && !$0.2 }, "each answered as durable, by the syncing thread: \(got)")
        #expect(writer.status.durableSequence >= held.last!)
        // The leader's fsync covered the held records appended before it started.
        #expect(writer.status.syncs == 1, "\(writer.status.syncs) fsyncs for six records")
    }

    @Test("segments after the first are zero-filled ahead of need while records come slowly: full size from their first record, read back without damage, also after a restart")
    func segmentsArePreallocated() throws {
        let directory = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory.root) }
        var limits = JournalWriter.Limits()
        limits.segmentSize = 256 << 10
        var writer: JournalWriter? = try JournalWriter(directory: directory, lastSequence: 0, uncheckpointedBytes: 0,
                                                       limits: limits, logger: Logger(label: "test"))
        func size(_ path: String) -> Int {
            var st = stat()
            return stat(path, &st) == 0 ? Int(st.st_size) : -1
        }
        // The first segment grows with its appends; once it has been in use for a second, with
        // records coming slowly, the next one is prepared.
        var last: UInt64 = 0
        func trickle() throws -> Bool {
            last = writer!.append(exportID: Self.export, Self.write(Int(last), bytes: 100))
            try writer!.waitDurable(last)
            return writer!.status.spareReady
        }
        #expect(Self.eventually { (try? trickle()) == true }, "no spare was prepared")
        #expect(size(directory.spareSegmentPath) == limits.segmentSize)
        // The growing segment gives way to the spare at the next append.
        for n in 1...40 { last = writer!.append(exportID: Self.export, Self.write(n, bytes: 1000)) }
        let firstOfSpare = last - 39
        try writer!.waitDurable(last)
        let segments = directory.segments()
        #expect(segments.count >= 2)
        let second = try #require(segments.dropFirst().first)
        #expect(second.first == firstOfSpare && size(second.path) == limits.segmentSize, "the second segment was not preallocated")
        var read: [UInt64] = []
        for s in segments {
            #expect(JournalReader.forEach(segment: s.path) { r, _ in read.append(r.sequence) } == nil, "damage in \(s.path)")
        }
        #expect(read == Array(1...last), "read back \(read.count) of \(last) records")
        // A new writer takes the spare left behind (the size segments have), and its records read back too.
        #expect(Self.eventually { (try? trickle()) == true }, "no next spare was prepared")
        writer!.stop()
        writer = nil
        let again = try JournalWriter(directory: directory, lastSequence: last, uncheckpointedBytes: 0, limits: limits,
                                      logger: Logger(label: "test"))
        let next = again.append(exportID: Self.export, Self.write(99, bytes: 100))
        try again.waitDurable(next)
        let newest = try #require(directory.segments().last)
        #expect(newest.first == next && size(newest.path) == limits.segmentSize, "the restarted writer did not take the spare")
        var after: [UInt64] = []
        #expect(JournalReader.forEach(segment: newest.path, after: last) { r, _ in after.append(r.sequence) } == nil)
        #expect(after == [next])
    }

    @Test("no segment is zero-filled while records come faster than the bound (the zeros would cost as much as the records)")
    func noSpareForFastRecords() throws {
        let directory = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory.root) }
        var limits = JournalWriter.Limits()
        limits.segmentSize = 8 << 20
        limits.preallocateBelowBytesPerSecond = 1 << 20
        let writer = try JournalWriter(directory: directory, lastSequence: 0, uncheckpointedBytes: 0, limits: limits,
                                       logger: Logger(label: "test"))
        // 4 MiB in the segment's first second and a bit: more than 1 MiB a second.
        var last: UInt64 = 0
        for n in 0..<64 { last = writer.append(exportID: Self.export, Self.write(n)) }
        usleep(1_100_000)
        for n in 64..<66 {
            last = writer.append(exportID: Self.export, Self.write(n, bytes: 100))
            try writer.waitDurable(last)
        }
        usleep(300_000)
        #expect(!writer.status.spareReady && access(directory.spareSegmentPath, F_OK) != 0, "a spare was prepared for fast records")
        writer.stop()
    }

    @Test("the bytes waiting for an fsync stay bounded: a held-back change makes the fsync itself")
    func unsyncedBytesAreBounded() throws {
        let directory = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory.root) }
        var limits = JournalWriter.Limits()
        limits.maxUnsyncedBytes = 1 << 20
        let writer = try JournalWriter(directory: directory, lastSequence: 0, uncheckpointedBytes: 0, limits: limits,
                                       logger: Logger(label: "test"))
        var peak = 0
        for n in 0..<200 {
            try writer.waitForRoom(bytes: 66 << 10)
            writer.append(exportID: Self.export, Self.write(n))
            writer.releaseRoom(bytes: 66 << 10)
            peak = max(peak, writer.status.unsyncedBytes)
        }
        #expect(peak <= limits.maxUnsyncedBytes)
        #expect(writer.status.durableSequence >= 180, "nothing made room by syncing")
    }

    /// The EBADF of issue 13: after a segment filled up (the writer rotated away from it), the
    /// next fsync treated the records in it as lost and wrote them all again to a new segment;
    /// when they were more than a segment's worth, that rewrite filled the new segment too,
    /// rotated away from it, and wrote the rest to descriptor -1 ("write ...: errno 9"), and the
    /// journal stayed degraded for ever. Records in a segment that filled up are synced where
    /// they are, and a rewrite (after a real failure) may span segments.
    @Test("records in a segment that filled up are synced in place, never rewritten to a closed descriptor")
    func fullSegmentThenSync() throws {
        let directory = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory.root) }
        var limits = JournalWriter.Limits()
        limits.segmentSize = 256 << 10
        let writer = try JournalWriter(directory: directory, lastSequence: 0, uncheckpointedBytes: 0, limits: limits,
                                       logger: Logger(label: "test"))
        // Eight records of 64 KiB: two segments, the last append filling the second.
        for n in 0..<8 { writer.append(exportID: Self.export, Self.write(n)) }
        try writer.waitDurable(writer.lastAppended)
        #expect(writer.status.failure == nil)
        #expect(writer.status.durableSequence == 8)
        // The frames in the segments (a preallocated one also holds zeros after them).
        var framed = 0
        for s in directory.segments() { JournalReader.forEach(segment: s.path) { _, bytes in framed += bytes } }
        #expect(framed == writer.status.uncheckpointedBytes, "records were written twice")
        var read: [UInt64] = []
        JournalLog.forEach(directory, after: 0) { r, _ in read.append(r.sequence) }
        #expect(read == Array(1...8))
    }

    @Test("segments are a fraction of a small limit, so the journal on disk stays near it")
    func segmentsScaleWithTheLimit() throws {
        let directory = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory.root) }
        var limits = JournalWriter.Limits()
        limits.maxUncheckpointedBytes = 8 << 20
        let writer = try JournalWriter(directory: directory, lastSequence: 0, uncheckpointedBytes: 0, limits: limits,
                                       logger: Logger(label: "test"))
        for n in 0..<100 { writer.append(exportID: Self.export, Self.write(n)) }
        try writer.waitDurable(writer.lastAppended)
        let sizes = directory.segments().map { (try? FileManager.default.attributesOfItem(atPath: $0.path)[.size] as? Int) ?? 0 }
        #expect(sizes.count >= 5)
        #expect(sizes.allSatisfy { $0 <= (1 << 20) + (80 << 10) }, "\(sizes)")
    }

    /// Appends, fsyncs, rotations and checkpoints that trim segments, all at once, with other
    /// threads opening and closing descriptors meanwhile (so a descriptor number the writer
    /// closed too early would be reused at once): no write or fsync may fail, and every record
    /// must be in the journal or the copy.
    @Test("concurrent appends, fsyncs, rotations and checkpoints never use a closed descriptor")
    func descriptorOwnership() throws {
        let directory = Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory.root) }
        var limits = JournalWriter.Limits()
        limits.maxUncheckpointedBytes = 4 << 20
        limits.segmentSize = 256 << 10
        let writer = try JournalWriter(directory: directory, lastSequence: 0, uncheckpointedBytes: 0, limits: limits,
                                       logger: Logger(label: "test"))
        let checkpointer = Checkpointer(directory: directory, writer: writer, logger: Logger(label: "test"), syncServed: {})
        let stop = NIOLockedValueBox(false)
        let errors = NIOLockedValueBox<[String]>([])
        let group = DispatchGroup()
        for t in 0..<4 {
            DispatchQueue.global().async(group: group) {
                writer.append(exportID: Self.export, .create(fileID: UInt64(10 + t), path: Array("f\(t)".utf8), type: .regular,
                                                             mode: 0o644, uid: 0, gid: 0, rdev: 0, target: []))
                for n in 0..<150 {
                    do {
                        let room = 4096 * (1 + n % 16) + 1024
                        try writer.waitForRoom(bytes: room)
                        let s = writer.append(exportID: Self.export,
                                              .write(fileID: UInt64(10 + t), path: Array("f\(t)".utf8), offset: UInt64(n * 4096),
                                                     data: [UInt8](repeating: UInt8(n & 0xff), count: 4096 * (1 + n % 16))))
                        writer.releaseRoom(bytes: room)
                        if n % 5 == 0 { try writer.waitDurable(s) }
                    } catch {
                        errors.withLockedValue { $0.append("\(error)") }
                    }
                }
            }
        }
        DispatchQueue.global().async(group: group) {
            while !stop.withLockedValue({ $0 }) {
                do { try checkpointer.checkpoint() } catch { errors.withLockedValue { $0.append("checkpoint: \(error)") } }
            }
        }
        DispatchQueue.global().async(group: group) {
            while !stop.withLockedValue({ $0 }) {
                let fd = open("/dev/null", O_RDONLY | O_CLOEXEC)
                close(fd)
            }
        }
        #expect(Self.eventually(60) { writer.status.appendedSequence == 604 })
        stop.withLockedValue { $0 = true }
        group.wait()
        try writer.waitDurable(writer.lastAppended)
        try checkpointer.checkpoint()
        #expect(errors.withLockedValue { $0 } == [])
        #expect(writer.status.failure == nil)
        #expect(directory.checkpointedSequence() == 604)
        for t in 0..<4 {
            let size = (try? FileManager.default.attributesOfItem(atPath: directory.copyDirectory(exportID: Self.export) + "/f\(t)")[.size] as? Int) ?? 0
            #expect(size == (0..<150).map { ($0 + 1 + $0 % 16) * 4096 }.max())
        }
    }
}
