import Foundation
import NFS3
import NFS3Client
import NIOCore
import NIOPosix
import ONCRPC
import SwiftNFSTesting
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The crash-consistency harness of the durability design: a client workload keeps a model of
/// what the server acknowledged as stable, in the export root and in directories that are made,
/// renamed and removed; the server is killed with SIGKILL at random points
/// (also while it recovers) and restarted, alternately with the served tree intact and wiped
/// (a lost instance store). After every restart each acknowledged change must be there, no
/// file may hold bytes that were never written, and handles from before must still resolve.
/// `SWIFTNFS_CRASH_ROUNDS` sets the number of crashes (12 unless given; every `swift test` runs
/// it, as root: the server's recovery runs as root; `SWIFTNFS_CRASH_HARNESS=0`
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

    /// The model: what the server acknowledged as stable, by path ("f3" in the export root,
    /// "d2/f5" in one of its directories).
    struct Model {
        var files: [String: Entry] = [:]
        /// The directories in the export root, by name, with their handles.
        var directories: [String: NFS3FileHandle] = [:]
        /// Paths whose last change was in flight at a crash: each may be in any listed state
        /// (nil: absent) from then on. Nobody acknowledged that change, so whether it took
        /// effect breaks no promise either way; these paths stay uncertain and the workload
        /// leaves them alone.
        var uncertain: [String: [[UInt8]?]] = [:]
        /// Directories whose last change (mkdir, rename, rmdir) was in flight at a crash: they
        /// may or may not exist, and are left alone.
        var uncertainDirectories: Set<String> = []
        /// Paths sharing a file with another path (hard links): never written again.
        var frozen: Set<String> = []
        var next = 0
        /// What happened to each path, for the report of a failure.
        var history: [String: [String]] = [:]
        var round = 0
        var rounds: [String] = []

        mutating func note(_ path: String, _ what: String) {
            history[path, default: []].append("round \(round): \(what)")
        }

        /// A new name, never used before.
        mutating func newName(_ prefix: String) -> String {
            next += 1
            return "\(prefix)\(next)"
        }

        /// Whether anything under directory `d` is uncertain (such a directory is left alone).
        func hasUncertain(in d: String) -> Bool {
            uncertain.keys.contains { $0.hasPrefix(d + "/") }
        }

        /// The paths of files in directory `d` ("" for the root).
        func files(in d: String) -> [String] {
            files.keys.filter { CrashConsistencyTests.split($0).directory == d }
        }
    }

    static func split(_ path: String) -> (directory: String, name: String) {
        guard let slash = path.firstIndex(of: "/") else { return ("", path) }
        return (String(path[..<slash]), String(path[path.index(after: slash)...]))
    }

    final class Counters: @unchecked Sendable {
        var crashes = 0
        var recoveryCrashes = 0
        var verified = 0
        var operations = 0
        var directoryOperations = 0
    }

    @Test("acknowledged changes survive SIGKILL, restarts and a lost served tree")
    func crashHarness() async throws {
        let rounds = Int(ProcessInfo.processInfo.environment["SWIFTNFS_CRASH_ROUNDS"] ?? "") ?? 12
        let seed = UInt64(ProcessInfo.processInfo.environment["SWIFTNFS_CRASH_SEED"] ?? "") ?? UInt64.random(in: 1...1_000_000)
        var rng = SplitMix(seed: seed)
        let server = try ServerProcess(portmap: .none)
        defer { server.removeFiles() }
        let durable = server.root.appendingPathComponent("durable").path
        server.extraArguments = ["--durable-dir", durable, "--checkpoint-seconds", "1", "--journal-flush-ms", "100"]
        try await server.start()
        let counters = Counters()
        var model = Model()
        do {
            for round in 0..<rounds {
                model.round = round
                var client = try await server.nfsClient(machine: "crash")
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
                if round % 2 == 1 { try server.wipeExport() }
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
                client = try await server.nfsClient(machine: "crash")
                let newRoot = try await client.mount(server.exportPath)
                try await verify(client, root: newRoot, model: &model, counters: counters)
                await client.close()
            }
        } catch {
            Issue.record("seed \(seed): \(error)\n\(model.rounds.joined(separator: "\n"))\nserver log:\n\(server.logTail())")
        }
        try? await server.stop()
        if ProcessInfo.processInfo.environment["SWIFTNFS_CRASH_KEEP"] != nil {
            let kept = FileManager.default.temporaryDirectory.appendingPathComponent("swiftnfs-crash-kept")
            try? FileManager.default.removeItem(at: kept)
            // cp -a keeps the identity tags (xattrs) that FileManager's copy drops.
            _ = try? await Tools.run("cp", ["-a", server.root.path, kept.path])
        }
        print("crash harness: seed \(seed), \(counters.crashes) crash points (\(counters.recoveryCrashes) during recovery), "
              + "\(counters.operations) operations (\(counters.directoryOperations) on directories), "
              + "\(counters.verified) acknowledged changes verified")
        #expect(counters.crashes == rounds)
        #expect(counters.verified > 0)
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
    func runWorkload(_ c: NFS3Client, root: NFS3FileHandle, model: inout Model, rng: inout SplitMix,
                     counters: Counters) async {
        func pick<T>(_ items: [T]) -> T { items[Int(rng.next(in: 0...UInt64(items.count - 1)))] }
        func handle(of directory: String) -> NFS3FileHandle { directory.isEmpty ? root : model.directories[directory]! }
        while true {
            counters.operations += 1
            let paths = model.files.keys.sorted()
            let writable = paths.filter { !model.frozen.contains($0) }
            // Directories files may go to: the root, and those nothing uncertain is in.
            let places = [""] + model.directories.keys.sorted().filter { !model.hasUncertain(in: $0) }
            let choice = paths.isEmpty ? 0 : rng.next(in: 0...9)
            switch choice {
            case 0, 9:  // create, then write FILE_SYNC or DATA_SYNC
                let directory = pick(places)
                let name = model.newName("f")
                let path = directory.isEmpty ? name : directory + "/" + name
                let stable: NFS3StableHow = rng.next(in: 0...1) == 0 ? .fileSync : .dataSync
                let data = bytes(Int(rng.next(in: 1...120_000)), &rng)
                model.uncertain[path] = [nil, []]
                model.note(path, "create in flight")
                guard let created = try? await c.create(handle(of: directory), Array(name.utf8)), let fh = created.object else { return }
                model.uncertain[path] = nil
                model.files[path] = Entry(handle: fh, content: [])
                model.note(path, "created")
                guard let w = try? await c.write(fh, offset: 0, data: ByteBuffer(bytes: data), stable: stable),
                      w.committed != .unstable else {
                    model.files[path] = nil
                    model.uncertain[path] = [[], data]
                    model.note(path, "write in flight")
                    return
                }
                model.files[path]!.content = data
                model.note(path, "written \(data.count) bytes \(stable)")
            case 1 where !writable.isEmpty:  // UNSTABLE write, then COMMIT
                let path = pick(writable)
                var entry = model.files[path]!
                let offset = Int(rng.next(in: 0...UInt64(entry.content.count)))
                let data = bytes(Int(rng.next(in: 1...50_000)), &rng)
                var after = entry.content
                if after.count < offset + data.count { after += [UInt8](repeating: 0, count: offset + data.count - after.count) }
                after.replaceSubrange(offset..<(offset + data.count), with: data)
                guard let w = try? await c.write(entry.handle, offset: UInt64(offset), data: ByteBuffer(bytes: data), stable: .unstable),
                      let commit = try? await c.commit(entry.handle, offset: 0, count: 0),
                      commit.verifier == w.verifier else {
                    model.files[path] = nil
                    model.uncertain[path] = [entry.content, after]
                    model.note(path, "unstable write or commit in flight")
                    return
                }
                entry.content = after
                model.files[path] = entry
                model.note(path, "unstable write \(data.count) bytes at \(offset), committed")
            case 2 where !writable.isEmpty:  // truncate
                let path = pick(writable)
                var entry = model.files[path]!
                let size = Int(rng.next(in: 0...UInt64(entry.content.count)))
                guard (try? await c.setattr(entry.handle, NFS3SetAttributes(size: UInt64(size)))) != nil else {
                    model.files[path] = nil
                    model.uncertain[path] = [entry.content, Array(entry.content.prefix(size))]
                    model.note(path, "truncate in flight")
                    return
                }
                entry.content = Array(entry.content.prefix(size))
                model.files[path] = entry
                model.note(path, "truncated to \(size)")
            case 3:  // rename to a new name, in the same or another directory
                let path = pick(paths)
                let (from, name) = Self.split(path)
                let directory = pick(places)
                let newName = model.newName("f")
                let target = directory.isEmpty ? newName : directory + "/" + newName
                let entry = model.files[path]!
                guard (try? await c.rename(handle(of: from), Array(name.utf8), to: handle(of: directory), Array(newName.utf8))) != nil else {
                    model.files[path] = nil
                    model.uncertain[path] = [entry.content, nil]
                    model.uncertain[target] = [nil, entry.content]
                    model.note(path, "rename to \(target) in flight")
                    model.note(target, "rename from \(path) in flight")
                    return
                }
                model.files[path] = nil
                model.files[target] = entry
                model.note(path, "renamed to \(target)")
                model.note(target, "renamed from \(path)")
                if model.frozen.remove(path) != nil { model.frozen.insert(target) }
            case 4:  // remove
                let path = pick(paths)
                let (directory, name) = Self.split(path)
                guard (try? await c.remove(handle(of: directory), Array(name.utf8))) != nil else {
                    model.uncertain[path] = [model.files[path]!.content, nil]
                    model.files[path] = nil
                    model.note(path, "remove in flight")
                    return
                }
                model.files[path] = nil
                model.note(path, "removed")
            case 5:  // hard link, in the same or another directory
                let path = pick(paths)
                let directory = pick(places)
                let newName = model.newName("f")
                let target = directory.isEmpty ? newName : directory + "/" + newName
                let entry = model.files[path]!
                model.frozen.insert(path)
                guard (try? await c.link(entry.handle, into: handle(of: directory), Array(newName.utf8))) != nil else {
                    model.uncertain[target] = [nil, entry.content]
                    model.note(target, "link from \(path) in flight")
                    return
                }
                model.files[target] = entry
                model.frozen.insert(target)
                model.note(path, "linked as \(target)")
                model.note(target, "linked from \(path)")
            case 6:  // mkdir
                counters.directoryOperations += 1
                let name = model.newName("d")
                model.uncertainDirectories.insert(name)
                model.note(name, "mkdir in flight")
                guard let made = try? await c.mkdir(root, Array(name.utf8)), let fh = made.object else { return }
                model.uncertainDirectories.remove(name)
                model.directories[name] = fh
                model.note(name, "made")
            case 7 where places.count > 1:  // rename a directory, with everything in it
                counters.directoryOperations += 1
                let old = pick(Array(places.dropFirst()))
                let new = model.newName("d")
                guard (try? await c.rename(root, Array(old.utf8), to: root, Array(new.utf8))) != nil else {
                    // Both names and everything in them are in doubt now.
                    model.uncertainDirectories.formUnion([old, new])
                    for path in model.files(in: old) {
                        let name = Self.split(path).name
                        model.uncertain[path] = [model.files[path]!.content, nil]
                        model.uncertain[new + "/" + name] = [nil, model.files[path]!.content]
                        model.files[path] = nil
                        model.frozen.remove(path)
                    }
                    model.directories[old] = nil
                    model.note(old, "rename to \(new) in flight")
                    return
                }
                model.directories[new] = model.directories.removeValue(forKey: old)
                for path in model.files(in: old) {
                    let moved = new + "/" + Self.split(path).name
                    model.files[moved] = model.files.removeValue(forKey: path)
                    if model.frozen.remove(path) != nil { model.frozen.insert(moved) }
                    model.note(path, "moved to \(moved) with its directory")
                    model.note(moved, "moved from \(path) with its directory")
                }
                model.note(old, "renamed to \(new)")
                model.note(new, "renamed from \(old)")
            case 8:  // rmdir of an empty directory
                guard let name = places.dropFirst().first(where: { model.files(in: $0).isEmpty }) else { continue }
                counters.directoryOperations += 1
                guard (try? await c.rmdir(root, Array(name.utf8))) != nil else {
                    model.directories[name] = nil
                    model.uncertainDirectories.insert(name)
                    model.note(name, "rmdir in flight")
                    return
                }
                model.directories[name] = nil
                model.note(name, "removed")
            default:
                continue
            }
        }
    }

    /// The names in a directory, by READDIRPLUS to the end.
    func list(_ c: NFS3Client, _ directory: NFS3FileHandle) async throws -> Set<String> {
        var names: Set<String> = []
        var cookie: UInt64 = 0
        var verifier = NFS3Verifier.zero
        while true {
            let page = try await c.readdirplus(directory, cookie: cookie, verifier: verifier, dirCount: 8192, maxCount: 65536)
            for e in page.entries where e.name != [46] && e.name != [46, 46] { names.insert(String(decoding: e.name, as: UTF8.self)) }
            if page.eof || page.entries.isEmpty { break }
            cookie = page.entries.last!.cookie
            verifier = page.cookieVerifier
        }
        return names
    }

    /// Checks the server against the model.
    func verify(_ c: NFS3Client, root: NFS3FileHandle, model: inout Model, counters: Counters) async throws {
        // Each path's history, with that of every path of the same name (a file moves with its
        // directory, and between directories) and of its directory.
        func history(_ paths: some Sequence<String>) -> String {
            let related = Set(paths.flatMap { path in
                let (directory, name) = Self.split(path)
                return [path, directory] + model.history.keys.filter { Self.split($0).name == name }
            }).filter { !$0.isEmpty }
            return "\(related.sorted().map { "\($0) \(model.history[$0] ?? [])" }) \(model.rounds)"
        }
        func lookup(_ path: String) async -> NFS3LookupOkay? {
            let (directory, name) = Self.split(path)
            var parent = root
            if !directory.isEmpty {
                guard let d = try? await c.lookup(root, Array(directory.utf8)).object else { return nil }
                parent = d
            }
            return try? await c.lookup(parent, Array(name.utf8))
        }
        for (path, allowed) in model.uncertain {
            var actual: [UInt8]?
            if let found = await lookup(path) { actual = try await c.readAll(found.object) }
            let isAllowed = allowed.contains { $0 == actual }
            counters.verified += 1
            #expect(isAllowed, "\(path) after a crash in flight: \(actual.map { "\($0.count) bytes" } ?? "absent"), allowed \(allowed.map { $0.map { "\($0.count) bytes" } ?? "absent" }) \(history([path]))")
        }
        for (name, handle) in model.directories.sorted(by: { $0.key < $1.key }) {
            let attributes = try await c.getattr(handle)
            let looked = await lookup(name)
            #expect(looked?.objectAttributes?.fileid == attributes.fileid, "directory \(name): the name and the old handle disagree \(history([name]))")
            counters.verified += 1
        }
        for (path, entry) in model.files.sorted(by: { $0.key < $1.key }) {
            // The handle from before the crash resolves, to the same file, with the same bytes.
            let attributes: NFS3FileAttributes
            do {
                attributes = try await c.getattr(entry.handle)
            } catch {
                throw HarnessFailure(description: "\(path): the handle from before the crash: \(error) \(history([path]))")
            }
            let looked = await lookup(path)
            #expect(looked?.objectAttributes?.fileid == attributes.fileid, "\(path): the name and the old handle disagree \(history([path]))")
            let content = try await c.readAll(entry.handle)
            #expect(content == entry.content, "\(path): \(content.count) bytes, expected \(entry.content.count) \(history([path]))")
            counters.verified += 1
        }
        // Every certain name is there, and nothing else but uncertain ones: in the root and in
        // every directory.
        for (directory, handle) in [("", root)] + model.directories.sorted(by: { $0.key < $1.key }) {
            let prefix = directory.isEmpty ? "" : directory + "/"
            let names = Set(try await list(c, handle).map { prefix + $0 })
            var certain = Set(model.files.keys.filter { Self.split($0).directory == directory })
            var uncertain = Set(model.uncertain.keys)
            if directory.isEmpty {
                certain.formUnion(model.directories.keys)
                uncertain.formUnion(model.uncertainDirectories)
            }
            #expect(certain.isSubset(of: names), "missing: \(history(certain.subtracting(names)))")
            let unexplained = names.subtracting(certain).subtracting(uncertain)
            #expect(unexplained.isEmpty, "unexpected names: \(history(unexplained))")
        }
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
