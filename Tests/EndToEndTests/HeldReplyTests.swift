import Foundation
import NFS3
import NFS3Client
import NIOCore
import SwiftNFSTesting
import Testing

/// On a durable export a change is answered only once its journal record is on stable
/// storage, but the reply waits for that, not the thread that made the change: the next call
/// runs meanwhile, and one fsync answers every change it covered. Through the real binary with
/// only two threads for changes and a durable disk slowed to 100 ms per fsync
/// (`SWIFTNFS_JOURNAL_DELAY`), so that a thread held per waiting change would show.
@Suite("Replies held for the journal", .serialized)
struct HeldReplyTests {
    static let fsyncDelay = Duration.milliseconds(100)

    @Test("16 CREATEs in flight on 2 threads: each answered after an fsync, few fsyncs for all; a failing journal answers each with NFS3ERR_IO and a new verifier")
    func changesShareFsyncs() async throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("swiftnfs-held-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let delay = base + "/delay", fault = base + "/fault"
        try Data("\(Self.fsyncDelay.components.attoseconds / 1_000_000_000_000_000)".utf8).write(to: URL(fileURLWithPath: delay))
        let metricsPort = try Ports.freeTCPAndUDP()
        var durable = ""
        try await ServerProcess.with(portmap: .none, configure: { server in
            durable = server.root.appendingPathComponent("durable").path
            server.environment = ["SWIFTNFS_JOURNAL_DELAY": delay, "SWIFTNFS_JOURNAL_FAULT": fault]
            server.extraArguments = ["--durable-dir", durable, "--threads", "2", "--metrics-listen", "127.0.0.1:\(metricsPort)"]
        }) { server in
            let client = try await server.nfsClient(machine: "held")
            let root = try await client.mount(server.exportPath)
            let probe = try #require(try await client.create(root, Array("probe".utf8)).object)
            let before = try await client.write(probe, offset: 0, data: ByteBuffer(repeating: 1, count: 10), stable: .fileSync)
            let fsyncs = { () async throws -> Double in
                let (text, _) = try await MetricsTests().get("http://127.0.0.1:\(metricsPort)/metrics")
                return try #require(MetricsTests.samples(text)[#"journal_fsyncs_total{directory="\#(durable)"}"#])
            }
            let fsyncsBefore = try await fsyncs()

            let latencies = try await withThrowingTaskGroup(of: Duration.self) { group in
                for n in 0..<16 {
                    group.addTask {
                        let started = ContinuousClock.now
                        _ = try await client.create(root, Array("file-\(n)".utf8))
                        return ContinuousClock.now - started
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            // Each reply came after the fsync that covered its record (they cannot be faster
            // than the delay an fsync takes).
            #expect(latencies.count == 16 && latencies.allSatisfy { $0 >= Self.fsyncDelay }, "latencies \(latencies)")
            // With a thread held per waiting change, two threads would take about one fsync per
            // two changes; replies held without their threads need two or three in all.
            let used = try await fsyncs() - fsyncsBefore
            #expect(used >= 1 && used <= 5, "\(used) fsyncs of the journal for 16 CREATEs in flight")
            for n in 0..<16 { _ = try await client.lookup(root, Array("file-\(n)".utf8)) }

            // The journal fails: every change in flight is answered with NFS3ERR_IO, none as done.
            _ = FileManager.default.createFile(atPath: fault, contents: nil)
            let statuses = await withTaskGroup(of: String.self) { group in
                for n in 0..<8 {
                    group.addTask {
                        do {
                            _ = try await client.create(root, Array("failing-\(n)".utf8))
                            return "NFS3_OK"
                        } catch let e as NFS3ClientError where e.code == .status {
                            return e.detail
                        } catch {
                            return "\(error)"
                        }
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.count == 8 && statuses.allSatisfy { $0 == "NFS3ERR_IO" }, "CREATEs while the journal fails: \(statuses)")
            try FileManager.default.removeItem(atPath: fault)
            var after: NFS3WriteOkay?
            for attempt in 0..<100 where after == nil {
                if attempt > 0 { try await Task.sleep(for: .milliseconds(100)) }
                after = try? await client.write(probe, offset: 0, data: ByteBuffer(repeating: 2, count: 10), stable: .fileSync)
            }
            let recovered = try #require(after, "no stable write succeeded within 10 s of the journal working again")
            #expect(recovered.verifier != before.verifier, "the write verifier did not change across the failure")
            await client.close()
        }
    }
}
