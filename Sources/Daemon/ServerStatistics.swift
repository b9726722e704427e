import FileStore
import Glibc
import Journal

/// What `swiftnfsd stats` shows: the handle caches' counters of every export, summed. The
/// running server writes them to STATE-DIR/statistics as `key=value` lines every
/// `ServerStatistics.interval` and when it stops; `swiftnfsd stats` asks the running server
/// for the counters of the moment through the control socket. Counters start at zero when an export is opened (at start, or when a reload adds
/// it); they are advisory, so the file is replaced without fsync.
package struct ServerStatistics: Hashable, Sendable {
    package var pid: Int32
    /// Milliseconds since the epoch.
    package var updated: Int64
    package var handleCache: HandleCacheStatistics

    package static let interval: Duration = .seconds(10)

    package init(pid: Int32, updated: Int64, handleCache: HandleCacheStatistics) {
        self.pid = pid
        self.updated = updated
        self.handleCache = handleCache
    }

    package var text: String {
        """
        pid=\(pid)
        updated_ms=\(updated)
        handle_cache.hits=\(handleCache.hits)
        handle_cache.misses=\(handleCache.misses)
        handle_cache.evictions=\(handleCache.evictions)
        handle_cache.invalidations=\(handleCache.invalidations)
        handle_cache.entries=\(handleCache.entries)
        handle_cache.descriptors=\(handleCache.descriptors)

        """
    }

    package init?(text: String) {
        var kv: [String: Int64] = [:]
        for line in text.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "="), let v = Int64(line[line.index(after: eq)...]) else { continue }
            kv[String(line[..<eq])] = v
        }
        func int(_ key: String) -> Int? { kv["handle_cache." + key].map { Int($0) } }
        guard let pid = kv["pid"], let updated = kv["updated_ms"], let hits = int("hits"), let misses = int("misses"),
              let evictions = int("evictions"), let invalidations = int("invalidations"), let entries = int("entries"),
              let descriptors = int("descriptors") else { return nil }
        var cache = HandleCacheStatistics()
        (cache.hits, cache.misses, cache.evictions) = (hits, misses, evictions)
        (cache.invalidations, cache.entries, cache.descriptors) = (invalidations, entries, descriptors)
        self.init(pid: Int32(truncatingIfNeeded: pid), updated: updated, handleCache: cache)
    }

    package static func path(stateDirectory: String) -> String { stateDirectory + "/statistics" }

    package static func read(stateDirectory: String) -> ServerStatistics? {
        (try? JournalDirectory.readFile(path(stateDirectory: stateDirectory)))
            .flatMap { ServerStatistics(text: String(decoding: $0, as: UTF8.self)) }
    }

    /// Whether the process that wrote these statistics still runs.
    package var serverIsRunning: Bool { kill(pid, 0) == 0 || errno == EPERM }

    /// The counters of `exports` now, written to the state directory.
    @discardableResult
    static func publish(_ exports: LiveExports) -> ServerStatistics {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        let cache = exports.current.reduce(HandleCacheStatistics()) { $0 + $1.export.store.cacheStatistics }
        let now = ServerStatistics(pid: getpid(), updated: Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000,
                                   handleCache: cache)
        try? JournalDirectory.writeFileAtomically(path(stateDirectory: exports.stateDirectory), Array(now.text.utf8), durable: false)
        return now
    }
}
