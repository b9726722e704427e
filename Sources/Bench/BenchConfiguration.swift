/// What to measure and how hard. The CLI fills it in; tests build it directly.
package struct BenchConfiguration: Sendable {
    package var host: String
    /// The export's path as MOUNT knows it.
    package var exportPath: String
    /// NFS and MOUNT ports; asked of the portmapper on `portmapPort` when nil.
    package var nfsPort: Int?
    package var mountPort: Int?
    package var portmapPort = 111
    package var workloads: [any Workload] = []
    package var connections = 1
    /// Requests in flight per connection; each value is a separate run of every workload.
    package var inflight: [Int] = [1]
    /// Measured seconds per run, and unmeasured seconds before them.
    package var duration = 10.0
    package var warmup = 0.0
    /// Stops a run after this many measured operations (whichever of this and `duration` comes first).
    package var maxOperations: Int?
    /// Names the server in results; "HOST:PORT" when nil.
    package var label: String?
    /// Size of the file of the 4 KiB random workloads, and of the 1 MiB sequential ones.
    package var fileSize = 64 << 20
    package var sequentialFileSize = 128 << 20
    /// The AUTH_SYS identity of every call (root by default: the export must not squash it).
    package var uid: UInt32 = 0
    package var gid: UInt32 = 0
    /// Seconds before a call counts as timed out.
    package var timeout = 30.0
    /// A server on this host whose threads' CPU each run reports (`/proc/PID/task`).
    package var serverPID: Int32?

    package init(host: String, exportPath: String) {
        self.host = host
        self.exportPath = exportPath
    }

    /// Problems a person should fix before anything is sent.
    package func validate() throws {
        func fail(_ s: String) -> BenchError { BenchError(.setup, s) }
        guard !workloads.isEmpty else { throw fail("no workload given") }
        guard (1...1024).contains(connections) else { throw fail("--connections must be 1...1024") }
        guard !inflight.isEmpty, inflight.allSatisfy({ (1...1024).contains($0) }) else { throw fail("--inflight must be 1...1024") }
        guard duration > 0, warmup >= 0 else { throw fail("--duration must be positive and --warmup not negative") }
        guard maxOperations.map({ $0 > 0 }) ?? true else { throw fail("--max-ops must be positive") }
        guard fileSize >= smallBlock, fileSize % smallBlock == 0 else { throw fail("--file-size must be a positive multiple of 4 KiB") }
        guard sequentialFileSize >= largeBlock, sequentialFileSize % largeBlock == 0 else {
            throw fail("--sequential-file-size must be a positive multiple of 1 MiB")
        }
        guard exportPath.hasPrefix("/") else { throw fail("--export must be an absolute path") }
    }
}
