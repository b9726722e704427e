import Journal
import NIOCore

extension ReplicationSource {
    /// Sends a standby the durable directory's checkpoint: FULL_COPY_BEGIN, every export's copy
    /// (`FullCopyReader`: entries, each regular file's content in chunks), FULL_COPY_END.
    /// Returns the checkpoint's sequence, after which the standby then follows the journal, and
    /// the hold on checkpoints, for the caller to release once the standby has caught up.
    ///
    /// Checkpoints are held (`Checkpointer.hold`) from before the copies are read: they are
    /// exactly at the checkpointed sequence while they are read, and the segments after it stay
    /// for the standby to catch up from. The reading runs on a thread of its own a batch at a time, and
    /// each batch waits for the connection to take the one before (the channel's back-pressure),
    /// so memory stays at a batch whatever the size of the copies, and the NFS clients are
    /// served meanwhile (only a journal that reaches its limit before the hold ends makes
    /// changes wait for room, as it does when checkpoints are slow).
    func sendFullCopy(id: Int, name: String, reason: String, checkpointer: Checkpointer,
                      _ outbound: NIOAsyncChannelOutboundWriter<ReplicationMessage>) async throws -> (UInt64, Checkpointer.Hold) {
        let directory = self.directory
        let started = ContinuousClock.now
        let thread = FullCopyThread()
        defer { thread.close() }
        // Waits for a checkpoint that is running.
        let hold = try await thread.run { checkpointer.hold() }
        let (sequence, highestFileID, totals, reader) = try await thread.run {
            // A checkpoint that stopped before it was recorded left the copies past it: the next one settles them.
            guard directory.copyProgress() == .none else {
                throw ReplicationError(.journal, "a checkpoint stopped halfway; the full copy waits for the next one")
            }
            return (directory.checkpointedSequence(), directory.highestCheckpointedFileID(), FullCopyReader.totals(directory),
                    FullCopyReader(directory: directory))
        }
        standbys.withLock { $0[id]?.progress.fullCopyStarted() }
        logger.notice("replication.full_copy started", metadata: [
            "replication.standby": "\(name)", "replication.reason": "\(reason)", "replication.sequence": "\(sequence)",
            "replication.files": "\(totals.files)", "replication.bytes": "\(totals.bytes)",
        ])
        try await outbound.write(.fullCopyBegin(sequence: sequence, highestFileID: highestFileID, files: totals.files, bytes: totals.bytes))
        while true {
            let pieces = try await thread.run { [batchBytes = settings.batchBytes] in try reader.next(maxBytes: batchBytes) }
            guard !pieces.isEmpty else { break }
            try await outbound.write(contentsOf: pieces.map { piece -> ReplicationMessage in
                switch piece {
                case .entry(let e): return .fullCopyEntry(e)
                case .data(let d): return .fullCopyData(d)
                }
            })
        }
        try await outbound.write(.fullCopyEnd(entries: UInt64(reader.entries)))
        fullCopiesSent.add(1, ordering: .relaxed)
        logger.notice("replication.full_copy sent", metadata: [
            "replication.standby": "\(name)", "replication.sequence": "\(sequence)", "replication.entries": "\(reader.entries)",
            "replication.bytes": "\(reader.contentBytes)", "replication.seconds": "\(ContinuousClock.now - started)",
        ])
        return (sequence, hold)
    }
}
