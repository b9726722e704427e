import Glibc
import NIOConcurrencyHelpers
import NIOCore

/// When UNSTABLE data of a journaled export goes to the journal.
///
/// An UNSTABLE WRITE is answered once the data is in the served file (the page cache), as in
/// an export without a journal; only its byte range is noted. The data is copied into the
/// journal from the served file later: at the file's COMMIT (before COMMIT is answered), once
/// it has waited `delay`, or at once while more than `maxBytes` wait. The protocol allows
/// this: a client keeps UNSTABLE data until a COMMIT succeeds with the same write verifier, and
/// sends it again otherwise, so nothing acknowledged is lost. What it saves: data written
/// again before it is copied (a file rewritten, blocks written at random) is copied once, and
/// a burst of writes is answered at the speed of the served disk.
public struct WriteBackSettings: Sendable {
    /// Data waits at most this long for a COMMIT before it is copied anyway (zero: every
    /// UNSTABLE write is journaled as it comes, as a stable one is).
    public var delay: Duration = .seconds(2)
    /// While more than this many bytes wait, further UNSTABLE writes are journaled as they come
    /// (the bound of what a COMMIT or a stop copies).
    public var maxBytes: UInt64 = 256 << 20
    /// What `delay` is measured on.
    package var clock: any ServerClock = SystemClock()

    public init(delay: Duration = .seconds(2), maxBytes: UInt64 = 256 << 20) {
        self.delay = delay
        self.maxBytes = maxBytes
    }

    var isEnabled: Bool { delay > .zero && maxBytes > 0 }
}

/// The files with UNSTABLE data not yet in the journal, and their ranges.
final class WriteBackTable: Sendable {
    struct Entry {
        var ranges = DirtyRanges()
        /// When the oldest data of the entry was written.
        var since: Duration
    }

    let settings: WriteBackSettings
    private let state = NIOLockedValueBox<(entries: [UInt64: Entry], bytes: UInt64)>(([:], 0))
    /// The files whose ranges a copy has taken and not yet recorded or put back. A COMMIT of
    /// such a file waits for that copy: otherwise it would find nothing to copy while the data
    /// is still on its way to the journal (or about to be put back for lack of room), and
    /// answer before the journal has it.
    private let copying = CopyGate()

    init(settings: WriteBackSettings) {
        self.settings = settings
    }

    /// Whether an UNSTABLE write may wait here rather than go to the journal at once.
    var hasRoom: Bool { state.withLockedValue { $0.bytes } < settings.maxBytes }
    var bytes: UInt64 { state.withLockedValue { $0.bytes } }

    func note(_ id: UInt64, _ range: Range<UInt64>) {
        state.withLockedValue { s in
            var entry = s.entries[id] ?? Entry(since: settings.clock.now)
            s.bytes -= entry.ranges.byteCount
            entry.ranges.insert(range)
            s.bytes += entry.ranges.byteCount
            s.entries[id] = entry
        }
    }

    /// Removes and returns what `id` has waiting, for a copy that calls `finish` when it has
    /// recorded the ranges or put them back. While another copy of `id` runs, waits for it to
    /// finish (`waitForCopy`) or returns nil (that copy does the work).
    func take(_ id: UInt64, waitForCopy: Bool) -> DirtyRanges? {
        guard copying.begin(id, wait: waitForCopy) else { return nil }
        let ranges = state.withLockedValue { s -> DirtyRanges? in
            guard let entry = s.entries.removeValue(forKey: id) else { return nil }
            s.bytes -= entry.ranges.byteCount
            return entry.ranges
        }
        if ranges == nil { copying.end(id) }
        return ranges
    }

    /// The copy of `id` that `take` began is over.
    func finish(_ id: UInt64) {
        copying.end(id)
    }

    /// Puts back ranges a copy could not take to the journal.
    func restore(_ id: UInt64, _ ranges: some Sequence<Range<UInt64>>) {
        for r in ranges { note(id, r) }
    }

    /// Forgets every file's waiting data (see `FileStore.discardUnstableData`).
    func discardAll() {
        state.withLockedValue { $0 = ([:], 0) }
    }

    /// The files whose data has waited `delay`, or all of them while more than half the bound
    /// waits (oldest first).
    func due(all: Bool = false) -> [UInt64] {
        let now = settings.clock.now
        return state.withLockedValue { s in
            let pressing = all || s.bytes > settings.maxBytes / 2
            return s.entries.filter { pressing || now - $0.value.since >= settings.delay }
                .sorted { $0.value.since < $1.value.since }.map(\.key)
        }
    }
}

extension FileStore {
    /// The largest journal record a copy makes (the size of the largest WRITE).
    static let writeBackPiece: UInt64 = 1 << 20

    /// Copies the UNSTABLE data of `id` that waits (see `WriteBackSettings`) from the served
    /// file into the journal. Each piece is read and recorded under the change lock, so the
    /// record holds the file's content at its place in the journal's order; data written
    /// meanwhile notes its range again and is copied by a later call. A file removed meanwhile
    /// has nothing to copy. On failure what was not copied waits again, and the error is thrown.
    /// Not `waiting`: a piece the journal has no room for now waits for a later call (the
    /// background flush must not wait for a checkpoint, nor hold up the retry of a failed journal).
    public func writeBack(_ id: UInt64, waiting: Bool = true) throws {
        guard let recorder, let table = writeBackTable, let dirty = table.take(id, waitForCopy: waiting) else { return }
        defer { table.finish(id) }
        let d: FileDescriptor
        do {
            // The server's own copy: whoever asks, it reads as root.
            d = try CallerIdentity.asRoot { try descriptor(id, writable: false) }
        } catch let e as StoreError where e.code == .stale || e.code == .notFound {
            return
        } catch {
            table.restore(id, dirty.ranges)
            throw error
        }
        defer { withExtendedLifetime(d) {} }
        let pieces = dirty.pieces(of: Self.writeBackPiece)
        for (i, piece) in pieces.enumerated() {
            let room = Int(piece.count) + Self.namespaceRecordRoom
            do {
                if waiting {
                    try recorder.waitForRoom(bytes: room)
                } else if !recorder.reserveRoom(bytes: room) {
                    table.restore(id, pieces[i...])
                    return
                }
                defer { recorder.releaseRoom(bytes: room) }
                let gone = try changeLock.withLock {
                    guard index.node(id) != nil else { return true }
                    var data = ByteBufferAllocator().buffer(capacity: Int(piece.count))
                    try readAll(d, at: piece.lowerBound, count: Int(piece.count), into: &data)
                    if data.readableBytes > 0 {
                        _ = recorder.recordWrite(fileID: id, path: path(of: id), offset: piece.lowerBound, data: data, exportID: exportID)
                    }
                    return false
                }
                if gone { return }
            } catch {
                table.restore(id, pieces[i...])
                throw error
            }
        }
    }

    /// `writeBack` of every file whose data is due, without waiting for room (the background
    /// flush), or of every file, waiting (`all`: the stop, a checkpoint on request). Stops at
    /// the first failure and throws it.
    public func writeBackDue(all: Bool = false) throws {
        guard let table = writeBackTable else { return }
        for id in table.due(all: all) { try writeBack(id, waiting: all) }
    }

    /// An HA node that steps down: its UNSTABLE data not committed is never copied into its
    /// journal (it would be a record of its own past the new active's, and the new active's
    /// record of that sequence would never reach it). The clients, seeing the new active's
    /// write verifier, send that data again there.
    public func discardUnstableData() {
        writeBackTable?.discardAll()
    }

    /// Bytes of UNSTABLE data waiting to be copied into the journal.
    public var writeBackBytes: UInt64 { writeBackTable?.bytes ?? 0 }

}

/// Which files a copy into the journal is working on; `begin` waits while another works on the
/// same file.
final class CopyGate: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let done = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var busy: Set<UInt64> = []

    init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(done, nil)
    }

    deinit {
        pthread_cond_destroy(done)
        pthread_mutex_destroy(mutex)
        done.deallocate()
        mutex.deallocate()
    }

    /// Marks `id` as worked on; false, when another works on it and `wait` is false.
    func begin(_ id: UInt64, wait: Bool) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while busy.contains(id) {
            guard wait else { return false }
            pthread_cond_wait(done, mutex)
        }
        busy.insert(id)
        return true
    }

    func end(_ id: UInt64) {
        pthread_mutex_lock(mutex)
        busy.remove(id)
        pthread_cond_broadcast(done)
        pthread_mutex_unlock(mutex)
    }
}
