import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The CPU time of each thread of a process on this host, from /proc/PID/task: how a server
/// spreads its work over its threads (one busy event loop, or all of them).
package struct ThreadCPU: Codable, Hashable, Sendable {
    /// The thread's name (`comm`: NIO-ELT-1-#0, the pool's threads, ...).
    package var name: String
    package var thread: Int32
    package var cpuSeconds: Double

    enum CodingKeys: String, CodingKey {
        case name, thread, cpuSeconds = "cpu_s"
    }

    /// The CPU time (user and system) of every thread of `pid` now; empty if it cannot be read.
    package static func sample(pid: Int32) -> [Int32: ThreadCPU] {
        let tasks = "/proc/\(pid)/task"
        guard let ids = try? FileManager.default.contentsOfDirectory(atPath: tasks) else { return [:] }
        let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
        var out: [Int32: ThreadCPU] = [:]
        for id in ids {
            guard let tid = Int32(id),
                  let stat = try? String(contentsOfFile: "\(tasks)/\(id)/stat", encoding: .utf8),
                  let ticks = Self.ticks(stat) else { continue }
            let name = (try? String(contentsOfFile: "\(tasks)/\(id)/comm", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? id
            out[tid] = ThreadCPU(name: name, thread: tid, cpuSeconds: Double(ticks) / ticksPerSecond)
        }
        return out
    }

    /// utime + stime of a /proc stat line (fields 14 and 15, counted after the `(comm)`, which
    /// may hold spaces and parentheses itself).
    package static func ticks(_ stat: String) -> UInt64? {
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After ")": state is field 3, so utime (14) and stime (15) are at 11 and 12.
        guard fields.count > 12, let user = UInt64(fields[11]), let system = UInt64(fields[12]) else { return nil }
        return user + system
    }

    /// The CPU each thread used between two samples, busiest first, idle threads left out.
    package static func used(from before: [Int32: ThreadCPU], to after: [Int32: ThreadCPU]) -> [ThreadCPU] {
        after.values.compactMap { t in
            var used = t
            used.cpuSeconds = ((t.cpuSeconds - (before[t.thread]?.cpuSeconds ?? 0)) * 100).rounded() / 100
            return used.cpuSeconds > 0 ? used : nil
        }.sorted { ($0.cpuSeconds, $1.thread) > ($1.cpuSeconds, $0.thread) }
    }
}
