import FileStore
import Metrics
import NFS3
import NIOConcurrencyHelpers
import NIOCore

/// What the NFS program reports through swift-metrics (`serve --metrics-listen`): calls and
/// their latency by procedure, failures by procedure and nfsstat3, file bytes moved. The
/// counters of every procedure are made once, so a call costs two clock reads and a few
/// atomic adds.
package final class NFS3Metrics: Sendable {
    private let requests: [Counter]
    private let durations: [Metrics.Timer]
    /// By procedure and status, made when a status first occurs.
    private let errors = NIOLockedValueBox<[UInt64: Counter]>([:])
    let readBytes = Counter(label: "nfs_read_bytes_total")
    let writtenBytes = Counter(label: "nfs_written_bytes_total")

    package init() {
        let procedures = (0...NFS3Procedure.commit.rawValue).map { NFS3Procedure(rawValue: $0)! }
        requests = procedures.map { Counter(label: "nfs_requests_total", dimensions: [("procedure", $0.name)]) }
        durations = procedures.map { Metrics.Timer(label: "nfs_request_duration_seconds", dimensions: [("procedure", $0.name)]) }
    }

    /// When a call began (the server's monotonic clock).
    static func now() -> Duration { SystemClock().now }

    /// A call to `p` answered; `results` holds its reply from `start` on (nfsstat3 first).
    func record(_ p: NFS3Procedure, results: ByteBuffer, start: Int, since began: Duration) {
        record(p, status: p == .null ? nil : results.getInteger(at: start, as: UInt32.self), since: began)
    }

    /// A call to `p` answered with nfsstat3 `status` (nil: none, NULL).
    func record(_ p: NFS3Procedure, status: UInt32?, since began: Duration) {
        let i = Int(p.rawValue)
        requests[i].increment()
        durations[i].record(duration: Self.now() - began)
        guard let raw = status, raw != 0 else { return }
        let key = UInt64(p.rawValue) << 32 | UInt64(raw)
        let counter = errors.withLockedValue { errors in
            if let c = errors[key] { return c }
            let status = NFS3Status(rawValue: raw)?.name ?? "\(raw)"
            let c = Counter(label: "nfs_errors_total", dimensions: [("procedure", p.name), ("status", status)])
            errors[key] = c
            return c
        }
        counter.increment()
    }
}
