import ArgumentParser
import Daemon
import FileStore
import Foundation
import Journal

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the write-back journal (size and age, the last checkpoint, what is not yet in the durable copy, degraded or not) and, for a cluster node, its role, epoch and service address.")

    @Option(help: ArgumentHelp("The durable directory the server uses.", valueName: "DIR"))
    var durableDir: String?

    @Option(help: ArgumentHelp("The state directory the server uses (default: DURABLE-DIR/state with --durable-dir, else /var/lib/swiftnfs): where its control socket is.",
                               valueName: "DIR"))
    var stateDir: String?

    func run() throws {
        if let durableDir { try journal(durableDir) }
        let control = ControlClient.socketPath(stateDirectory: stateDir ?? durableDir.map { $0 + "/state" } ?? "/var/lib/swiftnfs")
        if let answer = try? ControlClient.send("ha-status", to: control, timeoutSeconds: 5), !answer.hasPrefix("error: ") {
            print("high availability (preview):")
            for line in answer.split(separator: "\n") { print("  " + line) }
        } else if durableDir == nil {
            throw ValidationError("no cluster node answers on \(control), and no --durable-dir was given")
        }
    }

    func journal(_ durableDir: String) throws {
        let dir = JournalDirectory(root: durableDir)
        guard FileManager.default.fileExists(atPath: dir.segmentsDirectory) else {
            throw ValidationError("\(durableDir) holds no journal (no \(dir.segmentsDirectory))")
        }
        let segments = dir.segments()
        var bytes = 0
        var oldest: Date?
        for s in segments {
            let attrs = try? FileManager.default.attributesOfItem(atPath: s.path)
            bytes += (attrs?[.size] as? Int) ?? 0
            if let m = attrs?[.modificationDate] as? Date, oldest == nil || m < oldest! { oldest = m }
        }
        let checkpointed = dir.checkpointedSequence()
        let checkpointTime = (try? FileManager.default.attributesOfItem(atPath: dir.checkpointFile))?[.modificationDate] as? Date
        print("journal:        \(segments.count) segment(s), \(bytes) bytes" + (oldest.map { ", oldest written \(Self.age($0)) ago" } ?? ""))
        print("checkpointed:   through record \(checkpointed)" + (checkpointTime.map { ", \(Self.age($0)) ago" } ?? ", never"))
        if let s = Self.current(dir) {
            let running = s.serverIsRunning
            print("server:         " + (running ? "running (pid \(s.pid)), status \(Self.age(Date(timeIntervalSince1970: Double(s.updated)))) old" : "not running (last pid \(s.pid))"))
            print("records:        \(s.appendedSequence) appended, \(s.durableSequence) durable")
            print("not in copy:    \(s.uncheckpointedBytes) bytes" + (s.limitBytes > 0 ? " of \(s.limitBytes) allowed" : ""))
            print("not yet synced: \(s.unsyncedBytes) bytes")
            if s.heldBack > 0 {
                print("held back:      \(s.heldBack) change(s) waiting for room (checkpoints are behind the write rate, or the durable disk is slow)")
            }
            print("degraded:       " + (s.degraded.map { "YES: \($0)" } ?? "no"))
        } else {
            print("server:         no status written yet")
        }
    }

    /// The status the running server gives now (through its control socket), else the last
    /// one written.
    static func current(_ dir: JournalDirectory) -> JournalStatus? {
        guard let written = JournalStatus.read(from: dir) else { return nil }
        guard written.serverIsRunning, let control = written.control,
              let answer = try? ControlClient.send("journal-status \(dir.root)", to: control, timeoutSeconds: 5) else { return written }
        return JournalStatus(text: answer) ?? written
    }

    static func age(_ date: Date) -> String {
        let s = max(0, Int(Date().timeIntervalSince(date)))
        return s < 120 ? "\(s) s" : s < 7200 ? "\(s / 60) min" : "\(s / 3600) h"
    }
}

struct Checkpoint: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Bring the durable copy up to date now (asks the running server; with none, does it here).")

    @Option(help: ArgumentHelp("The durable directory the server uses.", valueName: "DIR"))
    var durableDir: String

    @Option(help: "Seconds to wait for a running server's checkpoint.")
    var timeout = 120

    func run() throws {
        let dir = JournalDirectory(root: durableDir)
        guard FileManager.default.fileExists(atPath: dir.segmentsDirectory) else {
            throw ValidationError("\(durableDir) holds no journal")
        }
        if let s = JournalStatus.read(from: dir), s.serverIsRunning {
            // The running server checkpoints its journals and answers when they are done.
            guard let control = s.control,
                  let answer = try ControlClient.send("checkpoint", to: control, timeoutSeconds: timeout) else {
                throw ValidationError("the server (pid \(s.pid)) does not answer on its control socket (\(s.control ?? "none named in \(durableDir)/status"))")
            }
            print(answer, terminator: "")
            if answer.contains("error: ") { throw ExitCode.failure }
            return
        }
        // No server: apply everything in the journal to the copy here, and keep the journal
        // for the served trees (see `Checkpointer.checkpoint`).
        let report = try Checkpointer.checkpoint(directory: dir, through: .max, syncServed: nil, rotate: {})
        for d in report.damages { print("damage: \(d)") }
        print("copy up to date through record \(report.appliedThrough) (\(report.records) records applied); "
              + "the journal is kept until the server checkpoints")
    }
}

struct JournalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "journal", abstract: "Journal tools (status and checkpoint are also top-level commands).",
        subcommands: [Status.self, Checkpoint.self, Inspect.self])

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the journal's records and verify every checksum.")

        @Option(help: ArgumentHelp("The durable directory the server uses.", valueName: "DIR"))
        var durableDir: String

        @Flag(help: "Also show records the last checkpoint already covers.")
        var all = false

        func run() throws {
            let dir = JournalDirectory(root: durableDir)
            let segments = dir.segments()
            guard !segments.isEmpty else { throw ValidationError("\(durableDir) holds no journal segments") }
            let checkpointed = dir.checkpointedSequence()
            print("checkpoint: through record \(checkpointed)")
            var serious = 0
            for s in segments {
                let bytes: [UInt8]
                do { bytes = try JournalDirectory.readFile(s.path) } catch {
                    print("\(s.path): unreadable: \(error)")
                    serious += 1
                    continue
                }
                let scan = JournalReader.scan(bytes)
                print("segment \(s.path): \(scan.records.count) record(s), \(bytes.count) bytes")
                for r in scan.records where all || r.sequence > checkpointed {
                    let epoch = r.epoch == 0 ? "" : "\tepoch \(r.epoch)"
                    print("  \(r.sequence)\texport \(String(r.exportID, radix: 16))\(epoch)\t\(Self.describe(r.change))")
                }
                for d in scan.rejected { print("  REJECTED: \(d)") }
                if let d = scan.damage {
                    print("  DAMAGE: \(d)" + (d.isTornTail ? " (normal after a crash)" : ""))
                    if !d.isTornTail { serious += 1 }
                }
            }
            if serious > 0 {
                print("\(serious) damaged segment(s): records before the damage are recovered, the rest are lost")
                throw ExitCode(1)
            }
        }

        static func describe(_ c: FileChange) -> String {
            func p(_ b: [UInt8]) -> String { String(decoding: b, as: UTF8.self) }
            switch c {
            case .write(let id, let path, let offset, let data): return "write  \(p(path)) (file \(id)) \(data.count) bytes at \(offset)"
            case .setAttributes(let id, let path, let v):
                var parts: [String] = []
                if let m = v.mode { parts.append("mode=" + String(m, radix: 8)) }
                if let u = v.uid { parts.append("uid=\(u)") }
                if let g = v.gid { parts.append("gid=\(g)") }
                if let s = v.size { parts.append("size=\(s)") }
                if let a = v.atime { parts.append("atime=\(a.seconds).\(a.nanoseconds)") }
                if let m = v.mtime { parts.append("mtime=\(m.seconds).\(m.nanoseconds)") }
                return "setattr \(p(path)) (file \(id)) \(parts.joined(separator: " "))"
            case .create(let id, let path, let type, let mode, let uid, let gid, _, let target):
                return "create \(p(path)) (file \(id)) \(type) mode=\(String(mode, radix: 8)) owner=\(uid):\(gid)" + (target.isEmpty ? "" : " -> \(p(target))")
            case .remove(let id, let path, let dir): return (dir ? "rmdir  " : "remove ") + "\(p(path)) (file \(id))"
            case .rename(let id, let from, let to): return "rename \(p(from)) -> \(p(to)) (file \(id))"
            case .link(let id, let existing, let new): return "link   \(p(existing)) -> \(p(new)) (file \(id))"
            case .checkpoint(let through): return "checkpoint through \(through)"
            case .reply(let entry): return "reply  \(entry.count) bytes (a duplicate request cache entry)"
            }
        }
    }
}
