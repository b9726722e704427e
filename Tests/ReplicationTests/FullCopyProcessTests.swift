import FileStore
import Foundation
import Glibc
import Journal
import SwiftNFSTesting
import Testing

/// The full copy between two `swiftnfsd` processes: a standby SIGKILLed in the middle of one
/// starts again cleanly (the partial copy dropped) and completes it.
@Suite struct FullCopyProcessTests {
    @Test func aStandbyKilledDuringAFullCopyRestartsAndCompletesIt() async throws {
        let replicationPort = try Ports.freeTCPAndUDP()
        let active = try ServerProcess(portmap: .none), standby = try ServerProcess(portmap: .none)
        defer { for s in [active, standby] { s.removeFiles() } }
        let activeDurable = JournalDirectory(root: active.root.appendingPathComponent("durable").path)
        let standbyDurable = JournalDirectory(root: standby.root.appendingPathComponent("durable").path)
        // The export has files when it is first served with a durable directory: they are in the
        // active's copy as a seed, which only a full copy brings to a standby that holds nothing.
        let big = (0..<(12 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) | 1 }
        try Data(big).write(to: active.exportURL.appendingPathComponent("big"))
        try FileManager.default.createDirectory(atPath: active.exportPath + "/d", withIntermediateDirectories: true)
        try Data("small".utf8).write(to: active.exportURL.appendingPathComponent("d/small"))
        active.extraArguments = ["--durable-dir", activeDurable.root, "--ha-replication-port", String(replicationPort)]
        standby.extraArguments = ["--durable-dir", standbyDurable.root, "--ha-replication-from", "127.0.0.1:\(replicationPort)"]
        // A slow link (50 ms a chunk): the copy takes over half a second, time to stop it halfway.
        let delay = standby.root.appendingPathComponent("full-copy-delay").path
        try Data("50".utf8).write(to: URL(fileURLWithPath: delay))
        standby.environment = [Failpoint.fullCopyDelay.rawValue: delay]
        try await active.start()
        try await active.logged {
            try await standby.start()
            // Killed once the copy is under way: some of the big file written, not all of it.
            let partial = standbyDurable.fullCopyStaging + "/copy"
            try await ReplicationLinkTests.eventually("the full copy under way", .seconds(60)) {
                Self.bytes(under: partial) > 1 << 20
            }
            try await standby.kill()
            #expect(Self.bytes(under: partial) < UInt64(big.count), "the big file was complete before the kill")
            #expect(!standbyDurable.hasFullCopyReady)
            // Started again, on a fast link: the partial copy goes, a whole one comes.
            try FileManager.default.removeItem(atPath: delay)
            try await standby.start()
            try await ReplicationLinkTests.eventually("the full copy installed", .seconds(120)) {
                !FileManager.default.fileExists(atPath: standbyDurable.fullCopyStaging)
                    && FileManager.default.fileExists(atPath: standbyDurable.checkpointFile)
                    && Self.exportCopy(standbyDurable).map { FileManager.default.fileExists(atPath: $0 + "/d/small") } == true
            }
            let copy = try #require(Self.exportCopy(standbyDurable))
            #expect(try Data(contentsOf: URL(fileURLWithPath: copy + "/big")) == Data(big))
            #expect(try String(contentsOfFile: copy + "/d/small", encoding: .utf8) == "small")
            #expect(standbyDurable.checkpointedSequence() == activeDurable.checkpointedSequence())
            #expect(standby.log.contains("replication.full_copy installed"), "\(standby.logTail())")
            try await standby.stop()
        }
        try await active.stop()
    }

    /// The one export's copy in a durable directory, if there is one.
    static func exportCopy(_ directory: JournalDirectory) -> String? {
        (try? FileManager.default.contentsOfDirectory(atPath: directory.root + "/copy"))?.first.map { directory.root + "/copy/" + $0 }
    }

    /// The sizes of the regular files under `path`, added up.
    static func bytes(under path: String) -> UInt64 {
        var total: UInt64 = 0
        for name in (try? FileManager.default.subpathsOfDirectory(atPath: path)) ?? [] {
            var st = stat()
            if lstat(path + "/" + name, &st) == 0, st.st_mode & S_IFMT == S_IFREG { total += UInt64(st.st_size) }
        }
        return total
    }
}
