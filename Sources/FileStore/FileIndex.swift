import Glibc
import NIOConcurrencyHelpers

/// The persistent identity of every file the server has handed out a handle for.
///
/// A file id is assigned the first time a file is seen and never reused. The index remembers
/// where the file was last seen (parent id and name) and its inode number as a check. Looking a
/// file up by id walks the parents to the export root, so a handle survives renames and moves
/// (the index follows every rename the server makes), server restarts (the index is a log in the
/// state directory), and a rebuild of the tree on another disk (ids are not inode numbers).
///
/// The log is append-only: `set` records (id, parent, inode, name), `forget` records (id), and
/// in a snapshot a `next` record (the next id to assign), so a forgotten id is never reused:
/// a handle to a removed file must stay stale, never name a new file.
/// A torn record at the end (a crash mid-append) is cut off when the log is loaded. The log is
/// rewritten as a snapshot at start when it has grown well past the live entries.
final class FileIndex: Sendable {
    static let rootID: UInt64 = 1

    struct Node: Hashable, Sendable {
        var parent: UInt64
        var name: [UInt8]
        var inode: UInt64

        /// Numbers first, then the names with memcmp: every entry a listing reports is compared
        /// with what the index has, and element-wise array equality showed in profiles.
        static func == (a: Node, b: Node) -> Bool {
            guard a.parent == b.parent, a.inode == b.inode, a.name.count == b.name.count else { return false }
            return a.name.withUnsafeBytes { x in
                b.name.withUnsafeBytes { y in x.isEmpty || memcmp(x.baseAddress!, y.baseAddress!, x.count) == 0 }
            }
        }
    }

    private struct State {
        var nodes: [UInt64: Node] = [:]
        var byInode: [UInt64: UInt64] = [:]
        var nextID: UInt64 = 2
        var logFD: Int32 = -1
        var records = 0
        /// Records written, and how many of them an fsync has covered.
        var written: UInt64 = 0
        var synced: UInt64 = 0
    }

    private let state: NIOLockedValueBox<State>
    /// Held across an fsync of the log, so that a caller returns only after an fsync that
    /// started after its records were written (not one already running, which may miss them).
    private let syncLock = NIOLock()
    private let logPath: String

    /// Opens (or creates) the index log at `logPath`; the root's inode is refreshed.
    init(logPath: String, rootInode: UInt64) throws {
        self.logPath = logPath
        var s = State()
        let (nodes, records, goodLength, highest) = try Self.load(logPath)
        s.nodes = nodes
        s.records = records
        s.nextID = max(s.nextID, highest + 1)
        for (id, node) in nodes {
            s.byInode[node.inode] = id
            s.nextID = max(s.nextID, id + 1)
        }
        if records > 2 * nodes.count + 4096 {
            try Self.writeSnapshot(nodes, nextID: s.nextID, to: logPath)
            s.records = nodes.count
        } else if goodLength >= 0 {
            _ = truncate(logPath, off_t(goodLength))
        }
        s.logFD = try sys("open \(logPath)") { open(logPath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600) }
        self.state = NIOLockedValueBox(s)
        let root = Node(parent: Self.rootID, name: [], inode: rootInode)
        state.withLockedValue { s in
            if let old = s.nodes[Self.rootID], s.byInode[old.inode] == Self.rootID { s.byInode[old.inode] = nil }
            s.nodes[Self.rootID] = root
            s.byInode[rootInode] = Self.rootID
            Self.append(&s, id: Self.rootID, node: root)
        }
    }

    deinit {
        state.withLockedValue { s in
            if s.logFD >= 0 { close(s.logFD) }
        }
    }

    func node(_ id: UInt64) -> Node? {
        state.withLockedValue { $0.nodes[id] }
    }

    /// The id of the file with `inode`, found as `name` in directory `parent`. A file seen for
    /// the first time gets a new id; a known file's location is brought up to date.
    func id(inode: UInt64, parent: UInt64, name: [UInt8]) -> UInt64 {
        state.withLockedValue { s in
            if let id = s.byInode[inode] {
                if id == Self.rootID { return id }
                let node = Node(parent: parent, name: name, inode: inode)
                if s.nodes[id] != node {
                    s.nodes[id] = node
                    Self.append(&s, id: id, node: node)
                }
                return id
            }
            return Self.assign(&s, inode: inode, parent: parent, name: name)
        }
    }

    /// A new id for an object that was just created (an O_EXCL create, mkdir, symlink, mknod):
    /// its inode number is new to the file system, so an id the index still holds for that
    /// number belonged to a file that is gone without the index hearing of it (a crash between
    /// the unlink and `forget`, or a removal on the server itself). That id is forgotten, never
    /// inherited: its handles must stay stale rather than name the new file, and the journal
    /// must never describe two files under one id.
    func newID(inode: UInt64, parent: UInt64, name: [UInt8]) -> UInt64 {
        state.withLockedValue { s in
            if let stale = s.byInode[inode], stale != Self.rootID {
                s.nodes[stale] = nil
                Self.appendForget(&s, stale)
            }
            return Self.assign(&s, inode: inode, parent: parent, name: name)
        }
    }

    /// The next id, given to `inode` at (`parent`, `name`).
    private static func assign(_ s: inout State, inode: UInt64, parent: UInt64, name: [UInt8]) -> UInt64 {
        let id = s.nextID
        s.nextID += 1
        let node = Node(parent: parent, name: name, inode: inode)
        s.nodes[id] = node
        s.byInode[inode] = id
        append(&s, id: id, node: node)
        return id
    }

    /// The id of `inode` if the index already has it at (`parent`, `name`): what `id(inode:
    /// parent:name:)` would return without changing anything (and so without writing the log).
    func id(ifPlaced inode: UInt64, parent: UInt64, name: [UInt8]) -> UInt64? {
        state.withLockedValue { s in
            guard let id = s.byInode[inode], id == Self.rootID || s.nodes[id] == Node(parent: parent, name: name, inode: inode) else {
                return nil
            }
            return id
        }
    }

    /// The id already assigned to `inode`, if any.
    func knownID(inode: UInt64) -> UInt64? {
        state.withLockedValue { $0.byInode[inode] }
    }

    /// Records that `id` now lives at (`parent`, `name`) with `inode`.
    func place(_ id: UInt64, parent: UInt64, name: [UInt8], inode: UInt64) {
        state.withLockedValue { s in
            let node = Node(parent: parent, name: name, inode: inode)
            if let old = s.nodes[id], old.inode != inode, s.byInode[old.inode] == id { s.byInode[old.inode] = nil }
            s.byInode[inode] = id
            s.nextID = max(s.nextID, id + 1)
            guard s.nodes[id] != node else { return }
            s.nodes[id] = node
            Self.append(&s, id: id, node: node)
        }
    }

    /// Assigns no id up to `through` from now on (ids another node assigned, known from a
    /// replicated journal: a handle to a file removed there must stay stale here). Logged as
    /// a `next` record.
    func reserve(through: UInt64) {
        state.withLockedValue { s in
            guard s.nextID <= through else { return }
            s.nextID = through + 1
            var record: [UInt8] = [3]
            Self.appendUInt64(&record, s.nextID)
            Self.write(&s, record)
        }
    }

    /// Forgets a file that no longer exists.
    func forget(_ id: UInt64) {
        guard id != Self.rootID else { return }
        state.withLockedValue { s in
            guard let node = s.nodes.removeValue(forKey: id) else { return }
            if s.byInode[node.inode] == id { s.byInode[node.inode] = nil }
            Self.appendForget(&s, id)
        }
    }

    /// Every known file's id by its place (parent id, name).
    func idsByPlace() -> [Place: UInt64] {
        state.withLockedValue { s in
            var out: [Place: UInt64] = [:]
            for (id, node) in s.nodes where id != Self.rootID { out[Place(parent: node.parent, name: node.name)] = id }
            return out
        }
    }

    struct Place: Hashable {
        var parent: UInt64
        var name: [UInt8]
    }

    /// Drops every inode number (after a rebuild every one of them is meaningless), keeping
    /// ids and locations; `place` records the new ones.
    func forgetAllInodes() {
        state.withLockedValue { s in
            s.byInode = [:]
            for (id, var node) in s.nodes where id != Self.rootID {
                node.inode = 0
                s.nodes[id] = node
            }
        }
    }

    /// Marks a file's place as unknown (its recorded name was removed).
    func markUnplaced(_ id: UInt64) {
        state.withLockedValue { s in
            guard var node = s.nodes[id] else { return }
            if s.byInode[node.inode] == id { s.byInode[node.inode] = nil }
            node.inode = 0
            s.nodes[id] = node
        }
    }

    /// Every known file id (for refreshing inode numbers after a rebuild).
    var allIDs: [UInt64] {
        state.withLockedValue { Array($0.nodes.keys) }
    }

    /// The path components from the export root to `id`, or nil if the chain is broken.
    func components(of id: UInt64) -> [[UInt8]]? {
        state.withLockedValue { s in
            var out: [[UInt8]] = []
            var cur = id
            while cur != Self.rootID {
                guard let node = s.nodes[cur], out.count < 4096 else { return nil }
                out.append(node.name)
                cur = node.parent
            }
            return out.reversed()
        }
    }

    /// Makes the log durable (fsync) through every record written before the call. Concurrent
    /// callers share an fsync when one that covers them is started after they came.
    func sync() {
        let wanted = state.withLockedValue { $0.written }
        syncLock.withLock {
            let (fd, covering) = state.withLockedValue { s in (s.synced >= wanted ? nil : s.logFD, s.written) }
            guard let fd else { return }
            _ = fsync(fd)
            state.withLockedValue { $0.synced = max($0.synced, covering) }
        }
    }

    // MARK: Log format

    private static func appendUInt64(_ out: inout [UInt8], _ v: UInt64) {
        for shift in stride(from: 0, to: 64, by: 8) { out.append(UInt8(truncatingIfNeeded: v >> UInt64(shift))) }
    }

    private static func encode(id: UInt64, node: Node) -> [UInt8] {
        var r: [UInt8] = [1]
        r.reserveCapacity(27 + node.name.count)
        appendUInt64(&r, id)
        appendUInt64(&r, node.parent)
        appendUInt64(&r, node.inode)
        r.append(UInt8(node.name.count & 0xff))
        r.append(UInt8(node.name.count >> 8))
        r += node.name
        return r
    }

    private static func append(_ s: inout State, id: UInt64, node: Node) {
        write(&s, encode(id: id, node: node))
    }

    private static func appendForget(_ s: inout State, _ id: UInt64) {
        var record: [UInt8] = [2]
        appendUInt64(&record, id)
        write(&s, record)
    }

    private static func write(_ s: inout State, _ record: [UInt8]) {
        s.records += 1
        s.written += 1
        _ = record.withUnsafeBytes { Glibc.write(s.logFD, $0.baseAddress, $0.count) }
    }

    /// Replays the log. Returns the nodes, the number of records, and the length of the valid
    /// prefix (or -1 when the whole file was valid).
    private static func load(_ path: String) throws -> ([UInt64: Node], Int, Int, UInt64) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return ([:], 0, -1, 0) }
            throw StoreError(errno: errno, operation: "open \(path)")
        }
        defer { close(fd) }
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw StoreError(errno: errno, operation: "read \(path)") }
            if n == 0 { break }
            data += chunk[0..<n]
        }
        var nodes: [UInt64: Node] = [:]
        var i = 0, records = 0
        var highest: UInt64 = 0
        func u64(_ at: Int) -> UInt64 {
            var v: UInt64 = 0
            for k in 0..<8 { v |= UInt64(data[at + k]) << UInt64(8 * k) }
            return v
        }
        while i < data.count {
            if data[i] == 1 {
                guard i + 27 <= data.count else { break }
                let len = Int(data[i + 25]) | Int(data[i + 26]) << 8
                guard i + 27 + len <= data.count else { break }
                nodes[u64(i + 1)] = Node(parent: u64(i + 9), name: Array(data[(i + 27)..<(i + 27 + len)]), inode: u64(i + 17))
                highest = max(highest, u64(i + 1))
                i += 27 + len
            } else if data[i] == 2 {
                guard i + 9 <= data.count else { break }
                nodes[u64(i + 1)] = nil
                i += 9
            } else if data[i] == 3 {
                guard i + 9 <= data.count else { break }
                highest = max(highest, u64(i + 1) &- 1)
                i += 9
            } else {
                break
            }
            records += 1
        }
        return (nodes, records, i == data.count ? -1 : i, highest)
    }

    private static func writeSnapshot(_ nodes: [UInt64: Node], nextID: UInt64, to path: String) throws {
        let tmp = path + ".tmp"
        let fd = try sys("open \(tmp)") { open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600) }
        defer { close(fd) }
        var buffer: [UInt8] = [3]
        appendUInt64(&buffer, nextID)
        for (id, node) in nodes { buffer += encode(id: id, node: node) }
        var off = 0
        while off < buffer.count {
            let n = try sys("write \(tmp)") { buffer.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + off, $0.count - off) } }
            off += n
        }
        _ = try sys("fsync \(tmp)") { fsync(fd) }
        _ = try sys("rename \(tmp)") { rename(tmp, path) }
    }
}
