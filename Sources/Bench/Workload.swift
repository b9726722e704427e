import NFS3
import NFS3Client

/// One kind of load. `prepare` makes what the operations need, through NFS on the session's
/// control connection, in `directory` (the workload's own, removed after the run), and returns
/// what the workers share.
package protocol Workload: Sendable {
    /// The name given to `--workload`.
    var name: String { get }
    /// What one operation is, for the help and the README.
    var summary: String { get }
    func prepare(in directory: NFS3FileHandle, session: BenchSession) async throws -> any PreparedWorkload
}

/// A workload ready to run: makes one worker per request slot (connections x in flight).
package protocol PreparedWorkload: Sendable {
    func makeWorker(slot: Int, client: NFS3Client) -> any WorkloadWorker
}

/// Issues one slot's operations, one after the other.
package protocol WorkloadWorker {
    /// One operation, every reply checked; returns the bytes of file data it moved.
    mutating func step() async throws -> Int
    /// Removes or checks what this worker left (after the measured time; failures are counted).
    mutating func finish() async throws
}

extension WorkloadWorker {
    package mutating func finish() async throws {}
}

/// A worker whose every operation is the same stateless call.
struct CallWorker: WorkloadWorker {
    let body: @Sendable () async throws -> Int
    mutating func step() async throws -> Int { try await body() }
}

/// A prepared workload whose workers are built by a closure.
struct PreparedByClosure: PreparedWorkload {
    let make: @Sendable (Int, NFS3Client) -> any WorkloadWorker
    func makeWorker(slot: Int, client: NFS3Client) -> any WorkloadWorker { make(slot, client) }
}

/// Every workload by name, in the order `all` runs them.
package enum Workloads {
    package static let all: [any Workload] = [
        NullWorkload(), GetattrWorkload(), LookupWorkload(), AccessWorkload(),
        Read4KWorkload(), Write4KWorkload(stable: .unstable), Write4KWorkload(stable: .fileSync),
        Read1MWorkload(), Write1MWorkload(commitEach: false), Write1MWorkload(commitEach: true), CreateRemoveWorkload(), Readdirplus10KWorkload(),
        MixedMetadataWorkload(),
    ]

    package static var names: [String] { all.map(\.name) }

    package static func named(_ name: String) -> (any Workload)? { all.first { $0.name == name } }

    /// Expands `all` and checks every name.
    package static func resolve(_ names: [String]) throws -> [any Workload] {
        var out: [any Workload] = []
        for name in names {
            if name == "all" {
                out += all
            } else if let w = named(name) {
                out.append(w)
            } else {
                throw BenchError(.setup, "unknown workload \(name); known: \(Self.names.joined(separator: ", ")), all")
            }
        }
        return out
    }
}

/// SplitMix64: a small, fast, seedable generator, so each slot's offsets are reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return DataPattern.mix(state)
    }
}

extension Array where Element == UInt8 {
    /// A file name as bytes.
    static func name(_ s: String) -> [UInt8] { Array(s.utf8) }
}
