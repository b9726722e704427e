/// The newest REPLY records (`FileChange.reply`) of a journal, kept past the checkpoint that
/// deletes their segments: a server that starts takes them into its duplicate request cache
/// with those after the checkpoint, so a client's retransmission across a restart (a graceful
/// one too, which checkpoints everything) or across a standby's restart and takeover still
/// gets the original reply.
///
///     DIR/replies   a journal segment (same header and frames) of the newest REPLY records,
///                   at most `limit`, in sequence order; written atomically by a checkpoint
///                   before it moves the checkpoint on, and only when it passed replies
///
/// Best effort: a damaged file gives what reads before the damage; entries are a cache.
package struct CheckpointedReplies: Sendable {
    package let limit: Int
    /// The newest REPLY records added, oldest first (trimmed now and then: at most twice the limit).
    private var kept: [JournalRecord] = []

    package init(limit: Int = JournalLog.replyLimit) { self.limit = max(0, limit) }

    package mutating func add(_ record: JournalRecord) {
        guard limit > 0, case .reply = record.change else { return }
        kept.append(record)
        if kept.count >= 2 * limit { kept.removeFirst(kept.count - limit) }
    }

    /// The records kept, oldest first, at most `limit`.
    package var records: [JournalRecord] { Array(kept.suffix(limit)) }

    /// The entries of the records kept, oldest first.
    package var entries: [[UInt8]] {
        records.map { if case .reply(let entry) = $0.change { entry } else { [] } }
    }

    package var isEmpty: Bool { kept.isEmpty }

    /// The replies a checkpoint kept (`save`), at most `limit`; none when there is no file.
    package static func load(_ directory: JournalDirectory, limit: Int = JournalLog.replyLimit) -> CheckpointedReplies {
        var replies = CheckpointedReplies(limit: limit)
        guard let bytes = try? JournalDirectory.readFile(directory.repliesFile) else { return replies }
        for r in JournalReader.scan(bytes).records { replies.add(r) }
        return replies
    }

    /// Adds the replies a checkpoint passed to those kept before, and writes the newest durably
    /// (one fsync per checkpoint that passed replies, none per call).
    static func save(_ passed: CheckpointedReplies, _ directory: JournalDirectory) throws {
        guard !passed.isEmpty else { return }
        var all = load(directory, limit: passed.limit)
        // A record kept already (a checkpoint that failed after it wrote the file) is not kept twice.
        let last = all.records.last?.sequence ?? 0
        for r in passed.records where r.sequence > last { all.add(r) }
        var bytes = JournalFormat.header()
        for r in all.records { bytes += JournalFormat.frame(r).readableBytesView }
        try JournalDirectory.writeFileAtomically(directory.repliesFile, bytes)
    }
}
