/// Reads every segment of a journal in order and returns the records after a checkpoint.
/// A segment written again after a durable-side failure repeats sequences of the one before
/// it; the first copy of each sequence is kept. Damage is reported per segment, and reading
/// goes on with the next segment: everything that can be recovered is.
public struct JournalLog: Sendable {
    public struct Damage: Sendable, CustomStringConvertible {
        public var segment: String
        public var damage: JournalDamage
        public var description: String { "\(segment): \(damage)" }
    }

    public var records: [JournalRecord] = []
    public var damages: [Damage] = []
    /// The highest sequence in any segment (whether or not after the checkpoint).
    public var lastSequence: UInt64 = 0
    /// Bytes of the frames after the checkpoint.
    public var bytesAfterCheckpoint = 0

    public static func read(_ directory: JournalDirectory, after checkpoint: UInt64, through limit: UInt64 = .max) -> JournalLog {
        var log = JournalLog()
        log.lastSequence = checkpoint
        var seen: UInt64 = 0
        for (_, path) in directory.segments() {
            guard let bytes = try? JournalDirectory.readFile(path) else {
                log.damages.append(Damage(segment: path, damage: .badHeader))
                continue
            }
            let scan = JournalReader.scan(bytes)
            if let d = scan.damage { log.damages.append(Damage(segment: path, damage: d)) }
            for r in scan.records {
                // A repeat of a sequence already read (a rewrite after a failure) is skipped.
                guard r.sequence > seen else { continue }
                seen = r.sequence
                log.lastSequence = max(log.lastSequence, r.sequence)
                guard r.sequence > checkpoint, r.sequence <= limit else { continue }
                log.records.append(r)
                log.bytesAfterCheckpoint += JournalFormat.frame(r).readableBytes
            }
        }
        return log
    }
}
