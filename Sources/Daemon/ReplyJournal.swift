import FileStore
import Glibc
import Journal
import NIOCore
import ONCRPC

/// The duplicate request cache's entries for changes, kept in the journal that HA replication
/// streams (`DuplicateReplyRecorder`): a REPLY record (`FileChange.reply`) is appended right
/// after the change's own records and before the reply is released, and a sync export's reply
/// waits for it as it waits for the change (one fsync covers both: group commit). A standby
/// takes each received entry into its cache (`follow`), and a server that starts takes the
/// newest ones, those a checkpoint kept (`CheckpointedReplies`) and those after it (`recover`):
/// a client's retransmission after a takeover or a restart gets the original reply, never a second execution (a REMOVE answered NFS3_OK is
/// not answered NFS3ERR_NOENT the second time).
///
/// The record needs no room reserved (`JournalWriter.waitForRoom`): it comes with a change that
/// had its room, and is a few hundred bytes.
struct ReplyJournal: DuplicateReplyRecorder {
    let writer: JournalWriter

    func record(_ key: DuplicateRequestCache.Key, reply: RPCReplyMessage) -> RPCReplyMessage {
        guard let entry = DuplicateRequestCache.encode(key, reply: reply, recorded: Self.now()) else { return reply }
        // No export: the entry is the server's, checkpoints apply nothing of it.
        let sequence = writer.append(exportID: 0, .reply(entry: entry))
        guard let hold = reply.hold else { return reply }
        var held = reply
        held.hold = RecordedReplyHold(change: hold, writer: writer, sequence: sequence)
        return held
    }

    /// Takes a record received from the active into `cache` if it is a reply (a recent one:
    /// a standby catching up from far behind reads old ones).
    static func follow(_ record: JournalRecord, into cache: DuplicateRequestCache) {
        guard case .reply(let entry) = record.change else { return }
        _ = try? cache.remember(encoded: entry, notBefore: notBefore())
    }

    /// Takes the recent replies `durability` recovered at the start into `cache`; returns how many.
    @discardableResult
    static func recover(_ durability: Durability, into cache: DuplicateRequestCache) -> Int {
        let notBefore = notBefore()
        return durability.takeRecoveredReplies().filter { (try? cache.remember(encoded: $0, notBefore: notBefore)) == true }.count
    }

    /// Seconds since 1970 (the entries' time: the nodes' clocks, kept close by NTP).
    static func now() -> UInt64 { UInt64(max(0, time(nil))) }

    /// The oldest time an entry taken in may have: `recordedReplyLifetime` ago.
    static func notBefore() -> UInt64 {
        let (now, lifetime) = (now(), DuplicateRequestCache.recordedReplyLifetime)
        return now > lifetime ? now - lifetime : 0
    }
}

/// A change's hold (`NFS3DurabilityHold`), then the wait for its reply's record, which is
/// almost always over by then: the fsync that made the change durable started after the record
/// was appended.
struct RecordedReplyHold: RPCReplyHold {
    let change: any RPCReplyHold
    let writer: JournalWriter
    let sequence: UInt64

    func whenReleased(allocator: ByteBufferAllocator, _ release: @escaping @Sendable (ByteBuffer?) -> Void) {
        change.whenReleased(allocator: allocator) { [writer, sequence] replacement in
            // The change could not be made durable: its failure goes out (the record is no
            // more durable than the change).
            guard replacement == nil else { return release(replacement) }
            // Should the record alone fail to become durable, the change still is: the reply
            // goes out, only a retransmission after a takeover would find no entry.
            writer.whenDurable(sequence) { _ in release(nil) }
        }
    }
}
