import Bench
import Foundation
import NFS3
import NIOCore
import NIOPosix
import ONCRPC
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The crash-consistency harness of the durability design: a client workload keeps a model of
/// what the server acknowledged as stable; the server is killed with SIGKILL at random points
/// (also while it recovers) and restarted, alternately with the served tree intact and wiped
/// (a lost instance store). After every restart each acknowledged change must be there, no
/// file may hold bytes that were never written, and handles from before must still resolve.
/// `SWIFTNFS_CRASH_ROUNDS` sets the number of crashes (12 unless given; every `swift test` runs
/// it, as root: identity tags are trusted.* extended attributes; `SWIFTNFS_CRASH_HARNESS=0`
/// skips it). A run prints its seed and its numbers (`SWIFTNFS_CRASH_SEED` repeats the
/// workload; the kill times vary); a failure reports the history of every name involved and
/// which restarts lost the served tree.
@Suite("Crash consistency", .serialized,
       .enabled(if: getuid() == 0 && ProcessInfo.processInfo.environment["SWIFTNFS_CRASH_HARNESS"] != "0",
                "the crash harness runs as root, unless SWIFTNFS_CRASH_HARNESS=0"))
struct CrashConsistencyTests {
    struct Entry {
        var handle: NFS3FileHandle
        var content: [UInt8]
    }

    /// The model: what the server acknowledged as stable, by name in the export root.
    struct Model {
        var files: [String: Entry] = [:]
        /// Names whose last change was in flight at a crash: each may be in any listed state
        /// (nil: absent) from then on. Nobody acknowledged that change, so whether it took
        /// effect breaks no promise either way; these names stay uncertain and the workload
        /// leaves them alone.
        var uncertain: [String: [[UInt8]?]] = [:]
        /// Names sharing a file with another name (hard links): never written again.
        var frozen: Set<String> = []
        var next = 0
        /// What happened to each name, for the report of a failure.
        var history: [String: [String]] = [:]
        var round = 0
        var rounds: [String] = []

        mutating func note(_ name: String, _ what: String) {
            history[name, default: []].append("round \(round): \(what)")
        }
    }

    final class Counters: @unchecked Sendable {
        var crashes = 0
        var recoveryCrashes = 0
        var verified = 0
        var operations = 0
    }

    @Test("acknowledged changes survive SIGKILL, restarts and a lost served tree")
    func crashHarness() async throws {
        let rounds = Int(ProcessInfo.processInfo.environment["SWIFTNFS_CRASH_ROUNDS"] ?? "") ?? 12
        let seed = UInt64(ProcessInfo.processInfo.environment["SWIFTNFS_CRASH_SEED"] ?? "") ?? UInt64.random(in: 1...1_000_000)
        var rng = SplitMix(seed: seed)
        let server = try ServerProcess(portmap: .none)
        defer { try? FileManager.default.removeItem(at: server.root) }
        let durable = server.root.appendingPathComponent("durable").path
        server.extraArguments = ["--durable-dir", durable, "--checkpoint-seconds", "1", "--journal-flush-ms", "100"]
        try await server.start()
        let group = MultiThreadedEventLoopGroup.singleton
        let counters = Counters()
        var model = Model()
        do {
            for round in 0..<rounds {
                model.round = round
                var client = try await connect(server, group)
                let root = try await client.mount(server.exportPath)
                // The workload runs until the server dies under it.
                let killAfter = Double(rng.next(in: 150...900)) / 1000
                let killer = Task {
                    try? await Task.sleep(for: .seconds(killAfter))
                    try? await server.kill()
                }
                await runWorkload(client, root: root, model: &model, rng: &rng, counters: counters)
                _ = await killer.value
                await client.close()
                counters.crashes += 1
                // Every other crash loses the served tree, as a stopped instance loses its store.
                if round % 2 == 1 { try wipe(server.exportPath) }
                model.rounds.append("round \(round): \(round % 2 == 1 ? "wiped" : "intact")\(round % 3 == 2 ? ", recovery killed" : "")")
                // Every third restart is itself killed while it recovers.
                if round % 3 == 2 {
                    let restart = Task { try? await server.start(timeout: .seconds(30)) }
                    try? await Task.sleep(for: .milliseconds(Int(rng.next(in: 5...120))))
                    try? await server.kill()
                    _ = await restart.value
                    try? await server.kill()  // if it launched only after the first kill
                    counters.recoveryCrashes += 1
                }
                try await server.start(timeout: .seconds(60))
                client = try await connect(server, group)
                let newRoot = try await client.mount(server.exportPath)
                try await verify(client, root: newRoot, model: &model, counters: counters)
                await client.close()
            }
        } catch {
            Issue.record("seed \(seed): \(error)\n\(model.rounds.joined(separator: "\n"))\nserver log:\n\(server.logTail())")
            if ProcessInfo.processInfo.environment["SWIFTNFS_CRASH_KEEP"] != nil {
                let kept = FileManager.default.temporaryDirectory.appendingPathComponent("swiftnfs-crash-kept")
                try? FileManager.default.removeItem(at: kept)
                try? FileManager.default.copyItem(at: server.root, to: kept)
            }
        }
        try? await server.stop()
        if ProcessInfo.processInfo.environment["SWIFTNFS_CRASH_KEEP"] != nil {
            let kept = FileManager.default.temporaryDirectory.appendingPathComponent("swiftnfs-crash-kept")
            try? FileManager.default.removeItem(at: kept)
            // cp -a keeps the identity tags (xattrs) that FileManager's copy drops.
            _ = try? await Tools.run("cp", ["-a", server.root.path, kept.path])
        }
        print("crash harness: seed \(seed), \(counters.crashes) crash points (\(counters.recoveryCrashes) during recovery), "
              + "\(counters.operations) operations, \(counters.verified) acknowledged changes verified")
        #expect(counters.crashes == rounds)
        #expect(counters.verified > 0)
    }

    func connect(_ server: ServerProcess, _ group: EventLoopGroup) async throws -> BenchNFSClient {
        try await BenchNFSClient.connect(
            to: try SocketAddress(ipAddress: "127.0.0.1", port: server.nfsPort),
            credentials: .sys(AuthSysParameters(machineName: "crash", uid: 0, gid: 0)),
            timeout: .seconds(20), group: group)
    }

    func wipe(_ path: String) throws {
        for name in try FileManager.default.contentsOfDirectory(atPath: path) {
            try FileManager.default.removeItem(atPath: path + "/" + name)
        }
    }

    func bytes(_ count: Int, _ rng: inout SplitMix) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var x = rng.next()
        for i in 0..<count {
            if i % 8 == 0 { x = rng.next() }
            out[i] = UInt8(truncatingIfNeeded: x >> UInt64((i % 8) * 8))
        }
        return out
    }

    /// Runs operations until one fails (the server was killed); the change in flight then
    /// becomes uncertain.
    func runWorkload(_ c: BenchNFSClient, root: NFS3FileHandle, model: inout Model, rng: inout SplitMix,
                     counters: Counters) async {
        while true {
            counters.operations += 1
            let names = model.files.keys.sorted()
            let writable = names.filter { !model.frozen.contains($0) }
            let choice = names.isEmpty ? 0 : rng.next(in: 0...5)
            switch choice {
            case 0:  // create, then write FILE_SYNC or DATA_SYNC
                let name = "f\(model.next)"
                model.next += 1
                let stable: NFS3StableHow = rng.next(in: 0...1) == 0 ? .fileSync : .dataSync
                let data = bytes(Int(rng.next(in: 1...120_000)), &rng)
                model.uncertain[name] = [nil, []]
                model.note(name, "create in flight")
                guard let created = try? await c.create(root, Array(name.utf8)), let fh = created.object else { return }
                model.uncertain[name] = nil
                model.files[name] = Entry(handle: fh, content: [])
                model.note(name, "created")
                guard let w = try? await c.write(fh, offset: 0, data: ByteBuffer(bytes: data), stable: stable),
                      w.committed != .unstable else {
                    model.files[name] = nil
                    model.uncertain[name] = [[], data]
                    model.note(name, "write in flight")
                    return
                }
                model.files[name]!.content = data
                model.note(name, "written \(data.count) bytes \(stable)")
            case 1 where !writable.isEmpty:  // UNSTABLE write, then COMMIT
                let name = writable[Int(rng.next(in: 0...UInt64(writable.count - 1)))]
                var entry = model.files[name]!
                let offset = Int(rng.next(in: 0...UInt64(entry.content.count)))
                let data = bytes(Int(rng.next(in: 1...50_000)), &rng)
                var after = entry.content
                if after.count < offset + data.count { after += [UInt8](repeating: 0, count: offset + data.count - after.count) }
                after.replaceSubrange(offset..<(offset + data.count), with: data)
                guard let w = try? await c.write(entry.handle, offset: UInt64(offset), data: ByteBuffer(bytes: data), stable: .unstable),
                      let commit = try? await c.commit(entry.handle, offset: 0, count: 0),
                      commit.verifier == w.verifier else {
                    model.files[name] = nil
                    model.uncertain[name] = [entry.content, after]
                    model.note(name, "unstable write or commit in flight")
                    return
                }
                entry.content = after
                model.files[name] = entry
                model.note(name, "unstable write \(data.count) bytes at \(offset), committed")
            case 2 where !writable.isEmpty:  // truncate
                let name = writable[Int(rng.next(in: 0...UInt64(writable.count - 1)))]
                var entry = model.files[name]!
                let size = Int(rng.next(in: 0...UInt64(entry.content.count)))
                guard (try? await c.setattr(entry.handle, NFS3SetAttributes(size: UInt64(size)))) != nil else {
                    model.files[name] = nil
                    model.uncertain[name] = [entry.content, Array(entry.content.prefix(size))]
                    model.note(name, "truncate in flight")
                    return
                }
                entry.content = Array(entry.content.prefix(size))
                model.files[name] = entry
                model.note(name, "truncated to \(size)")
            case 3:  // rename to a new name
                let name = names[Int(rng.next(in: 0...UInt64(names.count - 1)))]
                let target = "f\(model.next)"
                model.next += 1
                let entry = model.files[name]!
                guard (try? await c.rename(root, Array(name.utf8), to: root, Array(target.utf8))) != nil else {
                    model.files[name] = nil
                    model.uncertain[name] = [entry.content, nil]
                    model.uncertain[target] = [nil, entry.content]
                    model.note(name, "rename to \(target) in flight")
                    model.note(target, "rename from \(name) in flight")
                    return
                }
                model.files[name] = nil
                model.files[target] = entry
                model.note(name, "renamed to \(target)")
                model.note(target, "renamed from \(name)")
                if model.frozen.remove(name) != nil { model.frozen.insert(target) }
            case 4:  // remove
                let name = names[Int(rng.next(in: 0...UInt64(names.count - 1)))]
                guard (try? await c.remove(root, Array(name.utf8))) != nil else {
                    model.uncertain[name] = [model.files[name]!.content, nil]
                    model.files[name] = nil
                    model.note(name, "remove in flight")
                    return
                }
                model.files[name] = nil
                model.note(name, "removed")
            default:  // hard link
                let name = names[Int(rng.next(in: 0...UInt64(names.count - 1)))]
                let target = "f\(model.next)"
                model.next += 1
                let entry = model.files[name]!
                model.frozen.insert(name)
                guard (try? await c.link(entry.handle, into: root, Array(target.utf8))) != nil else {
                    model.uncertain[target] = [nil, entry.content]
                    model.note(target, "link from \(name) in flight")
                    return
                }
                model.files[target] = entry
                model.note(name, "linked as \(target)")
                model.note(target, "linked from \(name)")
                model.frozen.insert(target)
            }
        }
    }

    /// Checks the server against the model, settling the uncertain names on what is there.
    func verify(_ c: BenchNFSClient, root: NFS3FileHandle, model: inout Model, counters: Counters) async throws {
        for (name, allowed) in model.uncertain {
            let found = try? await c.lookup(root, Array(name.utf8))
            var actual: [UInt8]?
            if let found { actual = try await c.readAll(found.object) }
            let isAllowed = allowed.contains { $0 == actual }
            counters.verified += 1
            #expect(isAllowed, "\(name) after a crash in flight: \(actual.map { "\($0.count) bytes" } ?? "absent"), allowed \(allowed.map { $0.map { "\($0.count) bytes" } ?? "absent" }) \(model.history[name] ?? []) \(model.rounds)")
        }
        for (name, entry) in model.files.sorted(by: { $0.key < $1.key }) {
            // The handle from before the crash resolves, to the same file, with the same bytes.
            let attributes: NFS3FileAttributes
            do {
                attributes = try await c.getattr(entry.handle)
            } catch {
                throw HarnessFailure(description: "\(name): the handle from before the crash: \(error)")
            }
            let looked = try await c.lookup(root, Array(name.utf8))
            #expect(looked.objectAttributes?.fileid == attributes.fileid, "\(name): the name and the old handle disagree \(model.history[name] ?? []) \(model.rounds)")
            let content = try await c.readAll(entry.handle)
            let same = content == entry.content
            #expect(same, "\(name): \(content.count) bytes, expected \(entry.content.count) \(model.history[name] ?? []) \(model.rounds)")
            counters.verified += 1
        }
        // Nothing else is there.
        var names: Set<String> = []
        var cookie: UInt64 = 0
        var verifier = NFS3Verifier.zero
        while true {
            let page = try await c.readdirplus(root, cookie: cookie, verifier: verifier, dirCount: 8192, maxCount: 65536)
            for e in page.entries where e.name != [46] && e.name != [46, 46] { names.insert(String(decoding: e.name, as: UTF8.self)) }
            if page.eof || page.entries.isEmpty { break }
            cookie = page.entries.last!.cookie
            verifier = page.cookieVerifier
        }
        // Every certain name is there; anything else is an uncertain name.
        let certain = Set(model.files.keys)
        #expect(certain.isSubset(of: names), "missing: \(certain.subtracting(names).sorted().map { "\($0) (\(model.history[$0] ?? []))" })")
        let unexplained = names.subtracting(certain).subtracting(model.uncertain.keys)
        #expect(unexplained.isEmpty, "unexpected names: \(unexplained.sorted().map { "\($0) (\(model.history[$0] ?? []))" }) \(model.rounds)")
    }
}

struct HarnessFailure: Error, CustomStringConvertible {
    var description: String
}

/// A small deterministic generator, so a failing run can be repeated from its seed.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func next(in range: ClosedRange<UInt64>) -> UInt64 {
        range.lowerBound + next() % (range.upperBound - range.lowerBound + 1)
    }
}
