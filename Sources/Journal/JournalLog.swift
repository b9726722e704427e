import FileStore

/// Reads every segment of a journal in order, record by record: nothing is held in memory but
/// the record at hand, whatever the journal's size.
///
/// A segment written again after a durable-side failure repeats sequences of the one before
/// it; the first copy of each sequence is kept. Damage is reported per segment, and reading
/// goes on with the next segment: everything that can be recovered is. The epoch check runs
/// across segments: a record of an epoch below one read before is reported and not given.
package enum JournalLog {
    package struct Damage: Sendable, CustomStringConvertible {
        package var segment: String
        package var damage: JournalDamage
        package var description: String { "\(segment): \(damage)" }
    }

    /// Calls `body` with each record after `checkpoint` through `limit`, in sequence order, and
    /// the bytes of its frame. Returns the damage found (in any segment, whether or not after
    /// the checkpoint) and the highest sequence in any segment.
    @discardableResult
    package static func forEach(_ directory: JournalDirectory, after checkpoint: UInt64, through limit: UInt64 = .max,
                               _ body: (JournalRecord, Int) throws -> Void) rethrows -> (damages: [Damage], lastSequence: UInt64) {
        var damages: [Damage] = []
        var seen: UInt64 = 0
        var last = checkpoint
        var epochs = JournalEpochs()
        for (_, path) in directory.segments() {
            let rejectedBefore = epochs.rejected.count
            defer {
                for d in epochs.rejected[rejectedBefore...] {
                    damages.append(Damage(segment: path, damage: d))
                    // Not applied, but its sequence is taken: a writer continues after it.
                    if case .staleEpoch(_, let sequence, _, _) = d { last = max(last, sequence) }
                }
            }
            let damage = try JournalReader.forEach(segment: path, epochs: &epochs) { r, bytes in
                // A repeat of a sequence already read (a rewrite after a failure) is skipped.
                guard r.sequence > seen else { return }
                seen = r.sequence
                last = max(last, r.sequence)
                guard r.sequence > checkpoint, r.sequence <= limit else { return }
                try body(r, bytes)
            }
            if let damage { damages.append(Damage(segment: path, damage: damage)) }
        }
        return (damages, last)
    }

    /// What recovery needs to know of the records after a checkpoint, gathered in one pass.
    package struct Summary: Sendable {
        package var damages: [Damage] = []
        /// The highest sequence in any segment (whether or not after the checkpoint).
        package var lastSequence: UInt64 = 0
        /// Bytes of the frames after the checkpoint.
        package var bytesAfterCheckpoint = 0
        /// Records after the checkpoint, by export.
        package var recordsByExport: [UInt64: Int] = [:]
        /// The last namespace change after the checkpoint, by export.
        package var lastNamespaceChange: [UInt64: FileChange] = [:]
        /// The highest file id of the records after the checkpoint.
        package var highestFileID: UInt64 = 0
        /// The newest replies after the checkpoint (the entries of `FileChange.reply`), oldest
        /// first, at most `replyLimit` of them: what a restarted server's duplicate request
        /// cache starts with.
        package var replies: [[UInt8]] = []

        package func hasRecords(of exportID: UInt64) -> Bool { recordsByExport[exportID, default: 0] > 0 }
    }

    /// The replies a summary keeps at most: as many as a duplicate request cache keeps.
    package static let replyLimit = 16_384

    package static func summary(_ directory: JournalDirectory, after checkpoint: UInt64, replyLimit: Int = replyLimit) -> Summary {
        var s = Summary()
        var replies = CheckpointedReplies(limit: replyLimit)
        let result = forEach(directory, after: checkpoint) { r, bytes in
            s.bytesAfterCheckpoint += bytes
            guard r.change.changesFiles else { return replies.add(r) }
            s.recordsByExport[r.exportID, default: 0] += 1
            if r.change.isNamespaceChange { s.lastNamespaceChange[r.exportID] = r.change }
            s.highestFileID = max(s.highestFileID, r.change.fileID)
        }
        s.replies = replies.entries
        s.damages = result.damages
        s.lastSequence = result.lastSequence
        return s
    }
}
