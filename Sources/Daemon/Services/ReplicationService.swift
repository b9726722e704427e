import Journal
import Replication
import ServiceLifecycle

/// The replication of the default durable directory's journal (see `ReplicationSource` and
/// `ReplicationFollower`): the listener standbys follow, and the follower of an active, until
/// the stop.
final class ReplicationService: Service {
    let source: ReplicationSource?
    let listener: ReplicationSource.Listener?
    let follower: ReplicationFollower?
    let writer: JournalWriter

    init(source: ReplicationSource?, listener: ReplicationSource.Listener?, follower: ReplicationFollower?, writer: JournalWriter) {
        self.source = source
        self.listener = listener
        self.follower = follower
        self.writer = writer
    }

    /// The listener's port, once bound.
    var port: Int? { listener?.channel.localAddress?.port }

    func run() async throws {
        let (source, listener, follower) = (self.source, self.listener, self.follower)
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { tasks in
                if let source, let listener { tasks.addTask { await source.serve(listener) } }
                if let follower { tasks.addTask { await follower.run() } }
            }
        }
    }

    /// What status shows: synchronous or not, each standby this node is followed by, or what
    /// it follows.
    var lines: [String] {
        var lines: [String] = []
        if let source {
            let journal = writer.status
            let fallbacks = journal.replicaFallbacks > 0 ? "; gave up waiting for a standby \(journal.replicaFallbacks) times" : ""
            if !source.settings.synchronous {
                lines.append("asynchronous (--ha-replication-async): answers wait for this journal alone")
            } else if let acknowledged = journal.replicaAcknowledged {
                lines.append("synchronous: answers wait for the standby in sync too (acknowledged \(acknowledged))" + fallbacks)
            } else if !journal.answeringAlonePermitted {
                lines.append("synchronous, NO standby in sync: answers wait until etcd records that none is (the sync key)" + fallbacks)
            } else {
                lines.append("synchronous, but NO standby in sync: answers wait for this journal alone" + fallbacks)
            }
        }
        lines += (source?.status ?? []).map { s in
            "standby \(s.name): \(s.inSync ? "in sync" : "NOT in sync"), acknowledged \(s.acknowledged), lag \(s.lagBytes) bytes"
                + (s.copying ? " (being sent a full copy)" : s.caughtUp ? "" : " (catching up)")
        }
        if let s = follower?.status, s.source != nil || s.lastError != nil {
            lines.append("following \(s.source ?? "-"): \(s.connected ? "connected" : "not connected"), "
                + "\(s.inSync ? "in sync" : "NOT in sync"), appended \(s.appended), acknowledged \(s.acknowledged), lag \(s.lagBytes) bytes"
                + (s.fullCopy.map { ", FULL COPY of record \($0.sequence) in progress: \($0.entriesDone) entries, \($0.bytesDone) of \($0.bytes) bytes" } ?? "")
                + (s.fullCopy == nil && s.fullCopyNeeded ? ", FULL COPY NEEDED (the active cannot send one)" : "")
                + (s.fullCopies > 0 ? ", \(s.fullCopies) full copies installed" : "")
                + (s.lastError.map { ", last error: \($0)" } ?? ""))
        }
        return lines
    }

    /// The bytes of the full copy being received here (0: none is).
    var fullCopyBytes: UInt64 { follower?.status.fullCopy?.bytesDone ?? 0 }

    /// Full copies sent (on the active) and installed (on a standby) since the start.
    var fullCopies: Int {
        (source?.fullCopiesSent.load(ordering: .relaxed) ?? 0) + (follower?.status.fullCopies ?? 0)
    }

    /// Whether a standby holds what the active has: on the active, some standby is in sync; on a
    /// standby, it is in sync with the active.
    var inSync: Bool {
        (source?.status.contains { $0.inSync } ?? false) || (follower.map { $0.status.connected && $0.status.inSync } ?? false)
    }

    /// The largest lag of a standby (on the active), or this standby's.
    var lagBytes: UInt64 {
        max(source?.status.map(\.lagBytes).max() ?? 0, follower?.status.lagBytes ?? 0)
    }
}
