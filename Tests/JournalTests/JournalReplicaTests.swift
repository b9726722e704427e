import FileStore
import Foundation
import Journal
import Logging
import NIOConcurrencyHelpers
import Testing

/// Synchronous replication in the writer, without a standby: `replicate` stands for the
/// acknowledgements of one in sync.
@Suite("Journal writer: synchronous replication")
struct JournalReplicaTests {
    static func writer(replicaWait: Double) throws -> (JournalWriter, JournalDirectory) {
        let directory = JournalWriterTests.scratch()
        var limits = JournalWriter.Limits()
        limits.replicaWait = replicaWait
        return (try JournalWriter(directory: directory, lastSequence: 0, uncheckpointedBytes: 0, limits: limits, logger: Logger(label: "test")),
                directory)
    }

    @Test("while a standby is in sync, callers are answered once it has acknowledged their records")
    func answersWaitForTheStandby() throws {
        let (writer, directory) = try Self.writer(replicaWait: 30)
        defer { try? FileManager.default.removeItem(atPath: directory.root) }
        writer.replicate(acknowledged: 0)
        let one = writer.append(exportID: 1, JournalWriterTests.write(0))
        let done = JournalWriterTests.onThread { try writer.waitDurable(one) }
        usleep(200_000)
        #expect(done.withLockedValue { $0 } == false, "answered before the standby had it")
        #expect(writer.status.durableSequence == one)
        writer.replicate(acknowledged: one)
        #expect(JournalWriterTests.eventually { done.withLockedValue { $0 } })

        let two = writer.append(exportID: 1, JournalWriterTests.write(1))
        let answered = NIOLockedValueBox(false)
        writer.whenDurable(two) { error in answered.withLockedValue { $0 = error == nil } }
        usleep(100_000)
        #expect(answered.withLockedValue { $0 } == false)
        writer.replicate(acknowledged: two)
        #expect(answered.withLockedValue { $0 })
        // No standby in sync: answered from this journal alone.
        writer.replicate(acknowledged: nil)
        let three = writer.append(exportID: 1, JournalWriterTests.write(2))
        try writer.waitDurable(three)
        #expect(writer.status.replicaFallbacks == 0)
    }

    @Test("a standby that does not acknowledge within the wait is dropped, and callers are answered")
    func aSilentStandbyIsDroppedAfterTheWait() throws {
        let (writer, directory) = try Self.writer(replicaWait: 0.3)
        defer { try? FileManager.default.removeItem(atPath: directory.root) }
        writer.replicate(acknowledged: 0)
        let started = Date()
        try writer.waitDurable(writer.append(exportID: 1, JournalWriterTests.write(0)))
        #expect(Date().timeIntervalSince(started) >= 0.25)
        #expect(writer.status.replicaFallbacks == 1)
        #expect(writer.status.replicaAcknowledged == nil)

        // Callers that hold no thread: answered at the first check after the wait.
        writer.replicate(acknowledged: 1)
        let answered = NIOLockedValueBox(false)
        writer.whenDurable(writer.append(exportID: 1, JournalWriterTests.write(1))) { _ in answered.withLockedValue { $0 = true } }
        writer.checkReplicaWait()
        #expect(answered.withLockedValue { $0 } == false)
        usleep(350_000)
        writer.checkReplicaWait()
        #expect(answered.withLockedValue { $0 })
        #expect(writer.status.replicaFallbacks == 2)
    }

    @Test("while answering alone is not permitted, a dropped or gone standby holds answers back until it is")
    func answersWaitForLeaveToAnswerAlone() throws {
        let (writer, directory) = try Self.writer(replicaWait: 0.3)
        defer { try? FileManager.default.removeItem(atPath: directory.root) }
        // A cluster's active whose etcd names the standby (SyncRecord): not alone.
        writer.permitAnsweringAlone(false)
        writer.replicate(acknowledged: 0)
        let one = writer.append(exportID: 1, JournalWriterTests.write(0))
        let done = JournalWriterTests.onThread { try writer.waitDurable(one) }
        let held = NIOLockedValueBox(false)
        let two = writer.append(exportID: 1, JournalWriterTests.write(1))
        writer.whenDurable(two) { error in held.withLockedValue { $0 = error == nil } }
        // The standby is dropped after the wait: the callers still wait, for leave to answer alone.
        usleep(500_000)
        writer.checkReplicaWait()
        #expect(writer.status.replicaFallbacks == 1)
        #expect(writer.status.replicaAcknowledged == nil)
        #expect(done.withLockedValue { $0 } == false, "answered from this journal alone without leave")
        #expect(held.withLockedValue { $0 } == false)
        #expect(writer.status.answeredThrough == 0)
        writer.permitAnsweringAlone(true)
        #expect(JournalWriterTests.eventually { done.withLockedValue { $0 } })
        #expect(held.withLockedValue { $0 })
        #expect(writer.status.answeredThrough == two)

        // A standby waited for anew holds every answer only once it has acknowledged them.
        writer.permitAnsweringAlone(false)
        writer.replicate(acknowledged: one)
        #expect(writer.replicaHoldsEveryAnswer == false)
        writer.replicate(acknowledged: two)
        #expect(writer.replicaHoldsEveryAnswer)
        // It goes (disconnected): nothing more is answered until leave is given.
        writer.replicate(acknowledged: nil)
        let three = writer.append(exportID: 1, JournalWriterTests.write(2))
        let third = JournalWriterTests.onThread { try writer.waitDurable(three) }
        usleep(200_000)
        #expect(third.withLockedValue { $0 } == false)
        writer.permitAnsweringAlone(true)
        #expect(JournalWriterTests.eventually { third.withLockedValue { $0 } })
    }
}
