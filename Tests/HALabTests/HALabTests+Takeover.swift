import Foundation
import NFS3
import NFS3Client
import NIOCore
import SwiftNFSTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// After a takeover the new active serves what the old one acknowledged, under the handles the
/// client already holds: data written FILE_SYNC or committed, files created and removed, a
/// directory and what is in it. The client is the project's NFSv3 client in the root namespace
/// (on the bridge), talking to the service address; it keeps its handles across the failover.
extension HALabTests {
    /// What the client wrote, and the handles it was given.
    struct Written {
        var root: NFS3FileHandle
        var synced: NFS3FileHandle
        var committed: NFS3FileHandle
        var directory: NFS3FileHandle
        var nested: NFS3FileHandle
        var empty: NFS3FileHandle
        var removed: NFS3FileHandle
        /// A symbolic link (no identity tag: its id is kept beside the durable copy).
        var link: NFS3FileHandle
        static let syncedData = pattern(300_000, seed: 1)
        static let committedData = pattern(150_000, seed: 2)
        static let nestedData = pattern(5_000, seed: 3)
        /// What `checkServed` appends to the synced file and writes to its new file.
        static let moreData = pattern(70_000, seed: 5)
    }

    static func pattern(_ count: Int, seed: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 9 &+ seed) }
    }

    static func name(_ s: String) -> [UInt8] { Array(s.utf8) }

    /// Writes `data` at `offset` in calls of 64 KiB.
    static func write(_ client: NFS3Client, _ file: NFS3FileHandle, _ data: [UInt8], at offset: UInt64 = 0,
                      stable: NFS3StableHow) async throws {
        var done = 0
        while done < data.count {
            let chunk = Array(data[done..<min(data.count, done + 65536)])
            let reply = try await client.write(file, offset: offset + UInt64(done), data: ByteBuffer(bytes: chunk), stable: stable)
            #expect(reply.count == UInt32(chunk.count))
            if stable == .fileSync { #expect(reply.committed == .fileSync) }
            done += chunk.count
        }
    }

    /// Waits until the active's status shows the standby in sync (synchronous replication on)
    /// and named in the sync record (only then may it take over).
    static func waitInSync(_ lab: HALab, active: String, standby: String) async throws {
        var status = try await lab.nodes[active]!.status()
        let deadline = ContinuousClock.now + .seconds(20)
        func named(_ status: String) -> Bool {
            status.contains("standby \(standby): in sync") && status.contains("sync record: \(active), sync standby \(standby)")
        }
        while !named(status), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
            status = try await lab.nodes[active]!.status()
        }
        try #require(named(status), "\(status)")
    }

    /// Through the service address: a file written FILE_SYNC, one written UNSTABLE and
    /// committed, a directory with a file, an empty file (CREATE alone), a file created,
    /// written and removed.
    static func writeThroughService(_ lab: HALab) async throws -> Written {
        let client = try await lab.nfsClient()
        defer { Task { await client.close() } }
        let root = try await client.mount(lab.exportPath)
        let synced = try #require(try await client.create(root, name("synced.bin")).object)
        try await write(client, synced, Written.syncedData, stable: .fileSync)
        let committed = try #require(try await client.create(root, name("committed.bin")).object)
        try await write(client, committed, Written.committedData, stable: .unstable)
        _ = try await client.commit(committed, offset: 0, count: 0)
        let directory = try #require(try await client.mkdir(root, name("dir")).object)
        let nested = try #require(try await client.create(directory, name("nested.txt")).object)
        try await write(client, nested, Written.nestedData, stable: .fileSync)
        let empty = try #require(try await client.create(root, name("empty")).object)
        let removed = try #require(try await client.create(root, name("removed.txt")).object)
        try await write(client, removed, pattern(1000, seed: 4), stable: .fileSync)
        try await client.remove(root, name("removed.txt"))
        let link = try #require(try await client.symlink(directory, name("link"), to: name("../synced.bin")).object)
        return Written(root: root, synced: synced, committed: committed, directory: directory, nested: nested, empty: empty,
                       removed: removed, link: link)
    }

    /// The status an NFS call failed with, if it failed with one.
    static func status(of call: () async throws -> Void) async -> NFS3Status? {
        do {
            try await call()
            return .ok
        } catch let error as NFS3ClientError {
            return error.status
        } catch {
            return nil
        }
    }

    /// Through the service address, with the handles held from before: every byte acknowledged
    /// reads back, attributes and lookups answer with the same handles, the removed file is
    /// gone (its handle stale), and new writes and creates work.
    static func checkServed(_ written: Written, _ lab: HALab, newFile: String) async throws {
        let client = try await lab.nfsClient()
        defer { Task { await client.close() } }
        #expect(try await client.mount(lab.exportPath) == written.root)
        #expect(try await client.getattr(written.root).type == .directory)
        #expect(try await client.readAll(written.synced) == Written.syncedData)
        #expect(try await client.readAll(written.committed) == Written.committedData)
        #expect(try await client.readAll(written.nested) == Written.nestedData)
        #expect(try await client.getattr(written.synced).size == UInt64(Written.syncedData.count))
        #expect(try await client.getattr(written.empty).size == 0)
        #expect(try await client.getattr(written.directory).type == .directory)
        #expect(try await client.lookup(written.root, name("synced.bin")).object == written.synced)
        #expect(try await client.lookup(written.root, name("dir")).object == written.directory)
        #expect(try await client.lookup(written.directory, name("nested.txt")).object == written.nested)
        #expect(try await client.readlink(written.link).path == name("../synced.bin"))
        #expect(try await client.lookup(written.directory, name("link")).object == written.link)
        #expect(await status { _ = try await client.lookup(written.root, name("removed.txt")) } == .noent)
        #expect(await status { _ = try await client.getattr(written.removed) } == .stale)
        // New writes on the new active, through the old handles and to a new file.
        let more = Written.moreData
        try await write(client, written.synced, more, at: UInt64(Written.syncedData.count), stable: .fileSync)
        #expect(try await client.readAll(written.synced) == Written.syncedData + more)
        let created = try #require(try await client.create(written.directory, name(newFile)).object)
        try await write(client, created, more, stable: .fileSync)
        #expect(try await client.readAll(created) == more)
        // The new file does not take the removed one's id: that handle stays stale.
        #expect(created != written.removed)
        #expect(await status { _ = try await client.getattr(written.removed) } == .stale)
    }

    /// Once the standby is in sync, the client writes (`writeThroughService`); then the active
    /// is killed (SIGKILL) and the other node answers through the service address.
    static func writtenThenKilled(_ lab: HALab) async throws -> (Written, killed: String, active: String) {
        let (active, standby) = try await settled(lab)
        try await waitInSync(lab, active: active, standby: standby)
        let written = try await writeThroughService(lab)
        try await lab.nodes[active]!.kill9()
        try await lab.waitForHolder(standby, timeout: .seconds(30))
        let probe = try await lab.probe(untilOk: 30)
        try #require(probe.ok, "\(probe.tool)")
        return (written, active, standby)
    }

    /// SIGKILL of the active after the client's writes were acknowledged: the other node takes
    /// over and serves them, under the handles the client holds (no ESTALE, no EIO).
    @Test func aNewActiveServesWhatTheOldOneAcknowledgedUnderTheSameHandles() async throws {
        try await lab { lab in
            let (written, _, standby) = try await Self.writtenThenKilled(lab)
            try await Self.checkServed(written, lab, newFile: "after-kill.txt")
            let log = lab.nodes[standby]!.log
            #expect(log.contains("served trees rebuilt"), "\(log)")
            for line in log.split(separator: "\n") where line.contains("ha.caught_up") || line.contains("ha.serving") {
                print("ha-lab: takeover after SIGKILL: \(line)")
            }
        }
    }

    /// The killed node comes back as a standby, follows the new active, and after a switchover
    /// back to it serves what was written meanwhile (not its own older tree), still under the
    /// handles the client got before the first failover.
    @Test func aFormerActiveServesWhatItFollowedAfterASwitchoverBack() async throws {
        try await lab { lab in
            let (written, first, second) = try await Self.writtenThenKilled(lab)

            try lab.restart(first)
            try await Self.waitInSync(lab, active: second, standby: first)
            // Written on the second active only: the first must serve it after the switchover.
            let client = try await lab.nfsClient()
            let late = Self.pattern(40_000, seed: 6)
            try await Self.write(client, written.committed, late, at: UInt64(Written.committedData.count), stable: .fileSync)
            let created = try #require(try await client.create(written.root, Self.name("while-second.txt")).object)
            try await Self.write(client, created, late, stable: .fileSync)
            try await client.remove(written.directory, Self.name("nested.txt"))
            await client.close()

            try await Self.switchOver(lab, to: first)

            let after = try await lab.nfsClient()
            defer { Task { await after.close() } }
            #expect(try await after.readAll(written.synced) == Written.syncedData)
            #expect(try await after.readAll(written.committed) == Written.committedData + late)
            #expect(try await after.readAll(created) == late)
            #expect(try await after.lookup(written.root, Self.name("while-second.txt")).object == created)
            #expect(await Self.status { _ = try await after.getattr(written.nested) } == .stale)
            #expect(await Self.status { _ = try await after.lookup(written.directory, Self.name("nested.txt")) } == .noent)
            let more = Self.pattern(1000, seed: 7)
            try await Self.write(after, written.synced, more, stable: .fileSync)
            #expect(Array(try await after.readAll(written.synced).prefix(1000)) == more)
            try await after.rename(written.root, Self.name("while-second.txt"), to: written.directory, Self.name("renamed.txt"))

            // The second node stepped down without a restart: it follows the first again, and
            // after another switchover serves what the first wrote, not what it served before.
            try await Self.waitInSync(lab, active: first, standby: second)
            try await Self.switchOver(lab, to: second)
            let last = try await lab.nfsClient()
            defer { Task { await last.close() } }
            #expect(Array(try await last.readAll(written.synced).prefix(1000)) == more)
            #expect(try await last.lookup(written.directory, Self.name("renamed.txt")).object == created)
            #expect(try await last.readAll(created) == late)
            #expect(await Self.status { _ = try await last.lookup(written.root, Self.name("while-second.txt")) } == .noent)
        }
    }

    /// A standby killed after it received the client's writes starts again by rebuilding its
    /// served tree (it was behind its journal), follows the active again, and takes over when
    /// the active is killed, serving everything under the same handles.
    @Test func aRestartedStandbyRebuildsAtStartAndTakesOver() async throws {
        try await lab { lab in
            let (active, standby) = try await Self.settled(lab)
            try await Self.waitInSync(lab, active: active, standby: standby)
            let written = try await Self.writeThroughService(lab)
            let behind = try await lab.nodes[standby]!.status()
            #expect(behind.contains("served trees: behind the replicated journal"), "\(behind)")
            try await lab.nodes[standby]!.kill9()
            try lab.restart(standby)
            try await Self.waitInSync(lab, active: active, standby: standby)
            #expect(lab.nodes[standby]!.log.contains("served tree is behind the journal"), "\(lab.nodes[standby]!.log)")
            let rebuilt = try await lab.nodes[standby]!.status()
            #expect(rebuilt.contains("served trees: up to date"), "\(rebuilt)")
            try await lab.nodes[active]!.kill9()
            try await lab.waitForHolder(standby, timeout: .seconds(30))
            try #require(try await lab.probe(untilOk: 30).ok)
            try await Self.checkServed(written, lab, newFile: "after-restart.txt")
        }
    }

    /// An active that steps down with UNSTABLE data not committed does not copy it into its
    /// journal afterwards: that record would be its own, past the new active's journal, and
    /// the new active's next record of the same sequence would never reach it. The client,
    /// seeing a new verifier, writes again on the new active; after a switchover back, the
    /// old active serves that, not its own uncommitted data.
    @Test func anActiveSteppingDownWithUnstableDataFollowsTheNewOne() async throws {
        try await lab { lab in
            let (active, standby) = try await Self.settled(lab)
            try await Self.waitInSync(lab, active: active, standby: standby)
            let client = try await lab.nfsClient()
            let root = try await client.mount(lab.exportPath)
            let file = try #require(try await client.create(root, Self.name("unstable.bin")).object)
            let uncommitted = Self.pattern(20_000, seed: 8), rewritten = Self.pattern(20_000, seed: 9)
            let first = try await client.write(file, offset: 0, data: ByteBuffer(bytes: uncommitted), stable: .unstable)
            await client.close()
            try await Self.switchOver(lab, to: standby)
            // Past the write-back delay (2 s): the old active would have copied it by now.
            try await Task.sleep(for: .seconds(4))
            let again = try await lab.nfsClient()
            let second = try await again.write(file, offset: 0, data: ByteBuffer(bytes: rewritten), stable: .fileSync)
            #expect(second.verifier != first.verifier)
            await again.close()
            try await Self.waitInSync(lab, active: standby, standby: active)
            try await Self.switchOver(lab, to: active)
            let back = try await lab.nfsClient()
            defer { Task { await back.close() } }
            #expect(try await back.readAll(file) == rewritten)
        }
    }

    /// SIGSTOP of the active past its lease: the other node takes over and serves what was
    /// acknowledged; the stopped node, continued, steps down (fenced), follows the new active,
    /// and after a switchover back serves what was written on the new active meanwhile.
    @Test func aStoppedActiveComesBackAsAStandbyOfWhatWasWrittenMeanwhile() async throws {
        try await lab { lab in
            let (stopped, other) = try await Self.settled(lab)
            try await Self.waitInSync(lab, active: stopped, standby: other)
            let written = try await Self.writeThroughService(lab)
            lab.nodes[stopped]!.signal(SIGSTOP)
            try await lab.waitForHolder(other, timeout: .seconds(30))
            try #require(try await lab.probe(untilOk: 30).ok)
            try await Self.checkServed(written, lab, newFile: "while-stopped.txt")
            lab.nodes[stopped]!.signal(SIGCONT)
            try await Self.waitInSync(lab, active: other, standby: stopped)
            try await Self.switchOver(lab, to: stopped)
            let client = try await lab.nfsClient()
            defer { Task { await client.close() } }
            let more = Written.moreData
            #expect(try await client.readAll(written.synced) == Written.syncedData + more)
            let created = try await client.lookup(written.directory, Self.name("while-stopped.txt")).object
            #expect(try await client.readAll(created) == more)
            #expect(await Self.status { _ = try await client.getattr(written.removed) } == .stale)
        }
    }

    /// A standby that cannot rebuild its served tree when it takes over (here its durable copy
    /// is not a directory) does not serve: it holds no address, runs no hook, and says why in
    /// its status, rather than answer with an older tree and stale handles.
    @Test func aTakeoverThatCannotRebuildDoesNotServe() async throws {
        try await lab { lab in
            let (active, standby) = try await Self.settled(lab)
            try await Self.waitInSync(lab, active: active, standby: standby)
            _ = try await Self.writeThroughService(lab)
            let copy = lab.root.appendingPathComponent(standby).appendingPathComponent("durable").appendingPathComponent("copy")
            try FileManager.default.removeItem(at: copy)
            try Data("not a directory".utf8).write(to: copy)
            try await lab.nodes[active]!.kill9()
            var status = ""
            let deadline = ContinuousClock.now + .seconds(30)
            while !status.contains("LAST FAILED"), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(200))
                status = try await lab.nodes[standby]!.status()
            }
            #expect(status.contains("takeovers: 0 (LAST FAILED, not serving:"), "\(status)")
            #expect(try await lab.holders().isEmpty)
            #expect(!(try await lab.probe(untilOk: 2).ok))
            #expect(!lab.hookRuns().keys.contains { $0.hasPrefix("\(standby)-active-") }, "\(lab.hookRuns())")
            #expect(lab.nodes[standby]!.log.contains("NOT serving"), "\(lab.nodes[standby]!.log)")
        }
    }

    /// `swiftnfsd ha switchover --to NODE`, until the node answers through the service address.
    static func switchOver(_ lab: HALab, to node: String) async throws {
        let switched = try await lab.swiftnfsd(["ha", "switchover", "--ha-etcd", lab.etcd.url, "--to", node])
        try #require(switched.succeeded, "\(switched)")
        try await lab.waitForHolder(node, timeout: .seconds(30))
        try #require(try await lab.probe(untilOk: 30).ok)
    }
}
